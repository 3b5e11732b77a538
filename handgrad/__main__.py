"""`python -m handgrad` runs the same command as `handgrad`."""

from handgrad.cli import main

raise SystemExit(main())
