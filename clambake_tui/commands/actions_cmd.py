"""`clambake actions: the bundling workflow on GitHub Actions (trigger, status, logs, watch)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Not built yet: this command is added by a later change."""
