"""Finding the GitHub token and API address the way the `gh` CLI does.

Order: GH_TOKEN, GITHUB_TOKEN, then `gh auth token` when gh is installed. GH_HOST names a GitHub
Enterprise host when [github] api_url is left at its default. Every token found is registered
for redaction before anything else sees it.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from clambake_tui.errors import AuthError
from clambake_tui.redact import register_secret

__all__ = [
    "DEFAULT_API_URL",
    "TokenSource",
    "Token",
    "find_token",
    "resolve_api_url",
    "missing_token_error",
    "HOW_TO_PROVIDE_A_TOKEN",
]

DEFAULT_API_URL = "https://api.github.com"
GH_TIMEOUT_SECONDS = 5.0
HOW_TO_PROVIDE_A_TOKEN = (
    "export GH_TOKEN=<a token with repo and workflow scopes> (or GITHUB_TOKEN), "  # noqa: S105
    "or log in with `gh auth login`"
)


class TokenSource(enum.StrEnum):
    GH_TOKEN = "GH_TOKEN"  # noqa: S105 - the variable's name
    GITHUB_TOKEN = "GITHUB_TOKEN"  # noqa: S105 - the variable's name
    GH_CLI = "gh auth token"


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    source: TokenSource

    def __repr__(self) -> str:
        # A token must never reach a log line through a stray repr().
        return f"Token(source={self.source.value!r})"


def resolve_api_url(configured: str, env: Mapping[str, str] | None = None) -> str:
    """The REST base URL: [github] api_url if set, else GH_HOST's, else api.github.com."""
    environ = os.environ if env is None else env
    url = configured.rstrip("/")
    if url != DEFAULT_API_URL:
        return url
    host = environ.get("GH_HOST", "").strip().rstrip("/")
    if not host or host in ("github.com", "api.github.com"):
        return DEFAULT_API_URL
    if "://" in host:
        host = urlsplit(host).netloc
    return f"https://{host}/api/v3"


def _gh_host(api_url: str) -> str:
    host = urlsplit(api_url).hostname or "github.com"
    return "github.com" if host == "api.github.com" else host


def find_token(
    api_url: str = DEFAULT_API_URL,
    env: Mapping[str, str] | None = None,
    *,
    gh_timeout: float = GH_TIMEOUT_SECONDS,
) -> Token | None:
    """The first token found, in gh's order; None when there is none."""
    environ = os.environ if env is None else env
    for source in (TokenSource.GH_TOKEN, TokenSource.GITHUB_TOKEN):
        value = environ.get(source.value, "").strip()
        if value:
            register_secret(value)
            return Token(value, source)
    from_gh = _token_from_gh(_gh_host(api_url), environ, gh_timeout)
    if from_gh:
        register_secret(from_gh)
        return Token(from_gh, TokenSource.GH_CLI)
    return None


def _token_from_gh(host: str, environ: Mapping[str, str], timeout: float) -> str | None:
    gh = shutil.which("gh", path=environ.get("PATH"))
    if gh is None:
        return None
    try:
        done = subprocess.run(
            [gh, "auth", "token", "--hostname", host],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=dict(environ),
        )
    except (OSError, subprocess.TimeoutExpired):
        # A gh that hangs (keyring prompt) or cannot run is the same as no gh.
        return None
    if done.returncode != 0:
        return None
    value = done.stdout.strip()
    return value or None


def missing_token_error(action: str = "this command") -> AuthError:
    return AuthError(f"no GitHub token for {action}: {HOW_TO_PROVIDE_A_TOKEN}")
