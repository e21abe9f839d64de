"""`clambake spawn, monitor, terminate, status: the agent supervisor's commands."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Not built yet: this command is added by a later change."""
