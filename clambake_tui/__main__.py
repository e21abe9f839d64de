"""`python -m clambake_tui` runs the `clambake` command line."""

from clambake_tui.cli import main

raise SystemExit(main())
