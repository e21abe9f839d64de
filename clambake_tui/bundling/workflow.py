"""The bundling workflow file: the copy shipped in the package and installing it into a repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from clambake_tui.atomic import atomic_write_text
from clambake_tui.errors import ClambakeError

if TYPE_CHECKING:
    from clambake_tui.config import Config

__all__ = [
    "WORKFLOW_FILE_NAME",
    "DEFAULT_WORKFLOW_PATH",
    "WORKFLOW_INPUTS",
    "packaged_workflow",
    "render_workflow",
    "InstallResult",
    "install_workflow",
]

WORKFLOW_FILE_NAME = "clambake-bundling.yml"
DEFAULT_WORKFLOW_PATH = f".github/workflows/{WORKFLOW_FILE_NAME}"
# The only dispatch inputs the workflow declares; the trigger sends exactly these.
WORKFLOW_INPUTS = ("force_bundle", "dry_run")
_TIMEOUT_LINE = re.compile(r"^(?P<indent>\s+)timeout-minutes: \d+$", re.MULTILINE)


def packaged_workflow() -> str:
    """The workflow as shipped (identical to this repository's own .github/workflows copy)."""
    return (
        resources.files("clambake_tui.bundling")
        .joinpath(WORKFLOW_FILE_NAME)
        .read_text(encoding="utf-8")
    )


def render_workflow(config: Config) -> str:
    """The packaged workflow with this repository's settings (the job's timeout-minutes)."""
    minutes = config.github_actions.workflow_timeout_minutes
    text, count = _TIMEOUT_LINE.subn(rf"\g<indent>timeout-minutes: {minutes}", packaged_workflow())
    if count != 1:  # pragma: no cover - guarded by the workflow tests
        raise ClambakeError("the packaged bundling workflow has no single timeout-minutes line")
    return text


@dataclass(frozen=True, slots=True)
class InstallResult:
    path: Path
    changed: bool


def install_workflow(root: Path, config: Config, *, overwrite: bool = False) -> InstallResult:
    """Write the bundling workflow to `github_actions.bundling_workflow` under `root`.

    An existing, different file is kept unless `overwrite` (it may hold the user's edits).
    """
    relative = config.github_actions.bundling_workflow or DEFAULT_WORKFLOW_PATH
    target = (root / relative).resolve()
    if root.resolve() not in target.parents:
        raise ClambakeError(f"github_actions.bundling_workflow {relative!r} is outside {root}")
    text = render_workflow(config)
    if target.exists():
        current = target.read_text(encoding="utf-8", errors="replace")
        if current == text:
            return InstallResult(target, changed=False)
        if not overwrite:
            raise ClambakeError(
                f"{relative} exists and differs from clambake's; "
                "rerun with --force to replace it (your edits there will be lost)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return InstallResult(target, changed=True)
