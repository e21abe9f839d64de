"""One git worktree and branch per agent: `.clambake/worktrees/<agent>-<issue>` on `agentNNN/<issue>-<slug>`."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from clambake_tui.errors import AgentError
from clambake_tui.logs import get_logger
from clambake_tui.model import AGENT_BRANCH_PATTERN
from clambake_tui.state import Paths

__all__ = [
    "Worktree",
    "slugify",
    "branch_name",
    "resolve_base_branch",
    "find_issue_branch",
    "prepare_worktree",
    "worktree_is_disposable",
    "remove_worktree",
]

log = get_logger(__name__)

SLUG_TARGET = 30
GIT_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Worktree:
    """Where an agent works: its folder, its branch and the base the branch was cut from."""

    path: Path
    branch: str
    base: str
    # True when an existing branch (ours or from origin) was picked up rather than cut anew.
    reused: bool


def slugify(title: str, limit: int = SLUG_TARGET) -> str:
    """'Fix the login page!' -> 'fix-the-login-page': lowercase ascii, cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            if not slug:
                # One very long word: a hard cut is the only boundary there is.
                slug = word[:limit]
            break
        slug = candidate
    return slug


def branch_name(agent_id: str, issue_number: int, title: str) -> str:
    slug = slugify(title)
    return f"{agent_id}/{issue_number}-{slug}" if slug else f"{agent_id}/{issue_number}"


def _git(root: Path, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise AgentError("git is not installed (or not on PATH); agents need it") from None
    except subprocess.TimeoutExpired:
        raise AgentError(f"git {args[0]} took over {timeout:g} s in {root}; retry") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit {done.returncode}"
        raise AgentError(f"git {' '.join(args[:2])} failed in {root}: {reason}")
    return done.stdout.strip() if done.returncode == 0 else ""


def _has_origin(root: Path) -> bool:
    return bool(_git(root, "remote", check=False).split().count("origin"))


def resolve_base_branch(root: Path, configured: str | None) -> str:
    """[github] default_branch, else what origin/HEAD points to, else `main`."""
    if configured:
        return configured
    head = _git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
    if head.startswith("refs/remotes/origin/"):
        return head.removeprefix("refs/remotes/origin/")
    return "main"


def _refs(root: Path, pattern: str) -> list[str]:
    out = _git(root, "for-each-ref", "--format=%(refname)", pattern, check=False)
    return [line for line in out.splitlines() if line]


def find_issue_branch(root: Path, issue_number: int) -> tuple[str, bool] | None:
    """An existing `agentNNN/<issue>` or `agentNNN/<issue>-*` branch: (name, is_local).

    Local branches win over origin's; among several, the most recently committed one.
    """
    for prefix, local in (("refs/heads/", True), ("refs/remotes/origin/", False)):
        out = _git(
            root,
            "for-each-ref",
            "--sort=-committerdate",
            "--format=%(refname)",
            # `*` would not cross the '/' of agent001/12-x: list the prefix, match below.
            prefix,
            check=False,
        )
        for ref in out.splitlines():
            name = ref.removeprefix(prefix)
            match = AGENT_BRANCH_PATTERN.match(name)
            if match and int(match["issue"]) == issue_number:
                return name, local
    return None


def _worktrees(root: Path) -> dict[str, Path]:
    """Branch name -> folder of every worktree that has a branch checked out."""
    out = _git(root, "worktree", "list", "--porcelain", check=False)
    found: dict[str, Path] = {}
    path: Path | None = None
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line.startswith("branch refs/heads/") and path is not None:
            found[line.removeprefix("branch refs/heads/")] = path
    return found


def _git_lock(paths: Paths) -> FileLock:
    return FileLock(str(paths.locks / "git.lock"), timeout=GIT_TIMEOUT_S)


def prepare_worktree(
    paths: Paths,
    *,
    agent_id: str,
    issue_number: int,
    title: str,
    default_branch: str | None,
    fetch: bool = True,
) -> Worktree:
    """Give the agent a worktree: reuse the issue's branch if one exists, else cut a new one.

    Never resets or deletes an existing branch: work already done on an issue is kept.
    """
    root = paths.root
    if not (root / ".git").exists():
        raise AgentError(f"{root} is not a git repository; agents work in git worktrees")
    try:
        with _git_lock(paths):
            return _prepare(paths, agent_id, issue_number, title, default_branch, fetch)
    except Timeout:
        raise AgentError(
            "another clambake process holds the git lock for too long; retry in a moment"
        ) from None


def _prepare(
    paths: Paths,
    agent_id: str,
    issue_number: int,
    title: str,
    default_branch: str | None,
    fetch: bool,
) -> Worktree:
    root = paths.root
    origin = _has_origin(root)
    if origin and fetch:
        try:
            _git(root, "fetch", "--quiet", "--prune", "origin")
        except AgentError as exc:
            # Offline is not fatal: the agent starts from the last fetched state.
            log.warning("git fetch failed; using the last fetched state: %s", exc)
    base = resolve_base_branch(root, default_branch)
    # A worktree folder deleted by hand still holds its branch until pruned.
    _git(root, "worktree", "prune", check=False)
    checked_out = _worktrees(root)
    existing = find_issue_branch(root, issue_number)
    if existing is not None:
        branch, local = existing
        if branch in checked_out:
            # The branch already has a worktree (an earlier run): work continues there.
            return Worktree(checked_out[branch], branch, base, reused=True)
        path = paths.worktrees / f"{agent_id}-{issue_number}"
        _free_path(root, path)
        if local:
            _git(root, "worktree", "add", "--quiet", str(path), branch)
        else:
            _git(root, "worktree", "add", "--quiet", "-b", branch, str(path), f"origin/{branch}")
        return Worktree(path, branch, base, reused=True)
    branch = branch_name(agent_id, issue_number, title)
    start = f"origin/{base}" if origin and _refs(root, f"refs/remotes/origin/{base}") else base
    if not _refs(root, f"refs/remotes/origin/{base}") and not _refs(root, f"refs/heads/{base}"):
        raise AgentError(
            f"base branch {base!r} exists neither locally nor on origin; "
            "set [github] default_branch in clambake.toml"
        )
    path = paths.worktrees / f"{agent_id}-{issue_number}"
    _free_path(root, path)
    _git(root, "worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), start)
    return Worktree(path, branch, base, reused=False)


def _free_path(root: Path, path: Path) -> None:
    """Make room for a worktree at `path`, refusing to touch a folder holding anything."""
    if path.exists():
        if any(path.iterdir()):
            raise AgentError(
                f"{path} exists and is not a worktree of this issue's branch; move it away"
            )
        path.rmdir()


def worktree_is_disposable(path: Path, base: str) -> bool:
    """True when the worktree's branch has no commit beyond `base` and nothing uncommitted."""
    if not path.is_dir():
        return False
    if _git(path, "status", "--porcelain", "--untracked-files=normal", check=False):
        return False
    for start in (f"origin/{base}", base):
        if _git(path, "rev-parse", "--verify", "--quiet", start, check=False):
            ahead = _git(path, "rev-list", "--count", f"{start}..HEAD", check=False)
            return ahead == "0"
    return False


def remove_worktree(
    paths: Paths,
    path: Path,
    branch: str,
    *,
    base: str,
    unless: Callable[[], bool] = lambda: False,
) -> bool:
    """Remove a worktree and its branch, only when `worktree_is_disposable` (checked again under
    the lock). Returns True when it was removed.

    `unless` is asked under the git lock (which every spawn holds while it sets up a worktree):
    when it answers True (say, a newer run now uses this worktree) nothing is removed.
    """
    try:
        with _git_lock(paths):
            if unless() or not worktree_is_disposable(path, base):
                return False
            _git(paths.root, "worktree", "remove", "--force", str(path))
            _git(paths.root, "branch", "-D", branch, check=False)
    except (AgentError, Timeout) as exc:
        log.warning("cannot remove worktree %s: %s", path, exc)
        return False
    return True
