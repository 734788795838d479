"""Allow ``python -m scraping ...`` (handy in Makefiles and without the script on PATH)."""

from scraping.cli import main

raise SystemExit(main())
