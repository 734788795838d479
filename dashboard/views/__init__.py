"""The dashboard's pages, one file each: st.navigation in app.py runs the chosen one as a
script on every rerun, after the sidebar and with the model loaded. They are not imported."""
