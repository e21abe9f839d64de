"""Tokens in the shapes GitHub issues them (so that redaction patterns recognise them)."""

from __future__ import annotations

import secrets

__all__ = ["new_token"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_token(prefix: str = "ghp_") -> str:
    """`ghp_` + 36 characters like a classic personal token; `ghs_` for an Actions token."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(36))
