"""The GitHub client's errors: what GitHub said, rate limits, and GitHub being unreachable.

All are `GitHubError`s (one redacted line each), so a command prints them as they are; callers
that need to decide (the bundling fallback, the dashboard) look at the subclass and its fields.
"""

from __future__ import annotations

from datetime import datetime

from clambake_tui.errors import AuthError, ClambakeError, GitHubError

__all__ = [
    "GitHubAPIError",
    "TokenNeededError",
    "RateLimitError",
    "GitHubUnavailableError",
    "ActionsDisabledError",
]


class GitHubAPIError(GitHubError):
    """GitHub answered with an error status (404, 409, 422, ...)."""

    def __init__(self, message: str, *, status: int, github_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.github_message = github_message


class TokenNeededError(GitHubAPIError, AuthError):
    """GitHub refused a request sent without a token (401/403/404): the message says how to add one.

    Both a GitHubAPIError (callers handling GitHub's answers see it) and an AuthError (exit 2).
    """


class RateLimitError(GitHubError):
    """A rate limit that would take longer than we are willing to wait; `retry_at` says when."""

    def __init__(self, message: str, *, retry_at: datetime | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class GitHubUnavailableError(GitHubError):
    """GitHub kept failing (5xx, timeouts, refused connections) through every retry."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ActionsDisabledError(ClambakeError):
    """clambake.toml switched GitHub Actions bundling (or its manual trigger) off."""
