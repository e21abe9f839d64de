"""Where things live: the repository root, clambake.toml and the .clambake/ state folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clambake_tui.atomic import atomic_write_text
from clambake_tui.errors import StateError

__all__ = ["CONFIG_NAME", "STATE_DIR_NAME", "Paths", "find_root"]

CONFIG_NAME = "clambake.toml"
STATE_DIR_NAME = ".clambake"


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder upwards holding clambake.toml or .git, else cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file() or (folder / ".git").exists():
            return folder
    return here


@dataclass(frozen=True, slots=True)
class Paths:
    """Every path under the repository root that clambake uses."""

    root: Path

    @classmethod
    def discover(cls, start: Path | None = None) -> Paths:
        override = os.environ.get("CLAMBAKE_ROOT")
        return cls(Path(override).resolve() if override else find_root(start))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR_NAME

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def agents(self) -> Path:
        """Per-agent stdout/stderr logs."""
        return self.state / "agents"

    @property
    def worktrees(self) -> Path:
        return self.state / "worktrees"

    @property
    def locks(self) -> Path:
        return self.state / "locks"

    @property
    def registry(self) -> Path:
        return self.state / "registry.json"

    @property
    def metrics(self) -> Path:
        return self.state / "metrics.jsonl"

    def ensure_state(self) -> Path:
        """Create .clambake/ on demand and keep it out of git in the repository it lives in."""
        try:
            for folder in (self.state, self.logs, self.agents, self.worktrees, self.locks):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create {folder}: {exc.strerror or exc}; check permissions and free space"
            ) from exc
        self._ignore_state_dir()
        return self.state

    def _ignore_state_dir(self) -> None:
        if not (self.root / ".git").exists():
            return
        gitignore = self.root / ".gitignore"
        entry = f"{STATE_DIR_NAME}/"
        try:
            text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        except OSError:
            return
        lines = {line.strip() for line in text.splitlines()}
        if entry in lines or STATE_DIR_NAME in lines or f"/{entry}" in lines:
            return
        if text and not text.endswith("\n"):
            text += "\n"
        try:
            atomic_write_text(gitignore, text + entry + "\n")
        except StateError:
            # A read-only checkout still works; git just sees the folder as untracked.
            return
