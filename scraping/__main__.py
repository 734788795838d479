"""Allow `python -m cgan.scraping ...` (handy in Makefiles and without the script on PATH)."""

from cgan.scraping.cli import main

raise SystemExit(main())
