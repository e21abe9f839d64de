"""`clambake bundle: queued agent branches into one pull request (the train)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Not built yet: this command is added by a later change."""
