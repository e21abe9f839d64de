"""`clambake-tui`: the dashboard, its headless `--once` and the `--demo`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clambake_tui.cli import Context


def run(ctx: Context) -> int:
    print("clambake-tui: the dashboard is not built yet; try `clambake --help`", file=sys.stderr)
    return 2
