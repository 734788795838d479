"""One module per part of the page: the sidebar and the four views."""
