"""The small hierarchy of errors a user can act on; each message is one line, already redacted."""

from __future__ import annotations

__all__ = [
    "ClambakeError",
    "ConfigError",
    "AuthError",
    "GitHubError",
    "AgentError",
    "StateError",
]


class ClambakeError(Exception):
    """An error shown to the user as one line. `exit_code` is what the command exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        from clambake_tui.redact import redact

        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ClambakeError):
    """clambake.toml or an environment override is wrong."""

    exit_code = 2


class AuthError(ClambakeError):
    """No usable GitHub token."""

    exit_code = 2


class GitHubError(ClambakeError):
    """GitHub (or the emulator) answered with an error, or could not be reached."""


class AgentError(ClambakeError):
    """An agent cannot be spawned, found or stopped."""


class StateError(ClambakeError):
    """The state folder (.clambake/) cannot be read or written."""
