"""Secret redaction applied to every log line, error message and screen."""

from __future__ import annotations

import os
import re
import threading

__all__ = ["REDACTED", "redact", "register_secret", "register_env_secrets"]

REDACTED = "***"

# GitHub tokens (classic, fine-grained, OAuth, app installation/server, user-to-server, refresh)
# and Anthropic API keys, as one alternation: one scan of the text instead of one per pattern.
_TOKENS = re.compile(
    r"\bgithub_pat_[A-Za-z0-9_]{20,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bsk-ant-[A-Za-z0-9_\-]{8,}"
)
# A cheap first look: most lines hold no token prefix at all, and then the full pattern is skipped.
_TOKEN_PREFIX = re.compile(r"github_pat_|gh[pousr]_|sk-ant-")
# The value of an Authorization header, whatever its scheme.
_AUTH_HEADER = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|token|basic)\s+)?([^\s\"',}]+)"
)
_ENV_SECRETS = ("GH_TOKEN", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")

_lock = threading.Lock()
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact this exact value from now on (tokens that match no known pattern)."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def register_env_secrets(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    for name in _ENV_SECRETS:
        register_secret(env.get(name))


def redact(text: str) -> str:
    """Return `text` with every secret we know of replaced by ***."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    if _TOKEN_PREFIX.search(text):
        text = _TOKENS.sub(REDACTED, text)
    if "authorization" not in text.lower():
        return text
    return _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)


register_env_secrets()
