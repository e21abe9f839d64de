"""The git operations bundling needs, as real `git` subprocesses (async, never through a shell)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from clambake_tui.errors import ClambakeError
from clambake_tui.logs import get_logger
from clambake_tui.redact import register_secret

__all__ = [
    "GitError",
    "GitResult",
    "run_git",
    "remote_heads",
    "fetch_branches",
    "commits_ahead",
    "commit_time",
    "is_ancestor",
    "rev_parse",
    "push",
    "scratch_worktree",
    "merge",
    "actions_auth_env",
    "BOT_NAME",
    "BOT_EMAIL",
]

log = get_logger(__name__)

# Identity for bundle merge commits where the repository has none (a fresh Actions runner).
BOT_NAME = "clambake-bundler"
BOT_EMAIL = "clambake-bundler@users.noreply.github.com"
_TIMEOUT = 300.0


class GitError(ClambakeError):
    """A git command failed; the message holds its first line of stderr."""


@dataclass(frozen=True, slots=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def actions_auth_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """On an Actions runner, let git reach the server with the job's token.

    The workflow checks out with `persist-credentials: false` (nothing left on disk for later
    steps); bundling passes the token to its own git commands only, through git's environment
    configuration, never on a command line.
    """
    env = os.environ if environ is None else environ
    token = env.get("GH_TOKEN") or env.get("GITHUB_TOKEN")
    if env.get("GITHUB_ACTIONS") != "true" or not token:
        return {}
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    if not server.startswith("https://"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    register_secret(token)
    register_secret(basic)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


async def run_git(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    limit_seconds: float = _TIMEOUT,
) -> GitResult:
    """Run `git args...` in `cwd`. With `check`, a non-zero exit raises GitError (one line)."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **actions_auth_env(), **(env or {})}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except NotADirectoryError:
        raise GitError(f"{cwd} is not a folder") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise GitError(f"git {args[0]} took longer than {limit_seconds:.0f} s in {cwd}") from None
    result = GitResult(
        proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    )
    if check and not result.ok:
        reason = (
            _first_line(result.stderr) or _first_line(result.stdout) or f"exit {result.returncode}"
        )
        raise GitError(f"git {args[0]} failed in {cwd}: {reason}")
    return result


async def remote_heads(cwd: Path, remote: str = "origin") -> dict[str, str]:
    """Every branch on `remote` and its commit, straight from the remote (`git ls-remote`)."""
    result = await run_git(cwd, "ls-remote", "--heads", remote)
    heads: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref.removeprefix("refs/heads/")] = sha
    return heads


async def fetch_branches(cwd: Path, branches: list[str], remote: str = "origin") -> None:
    """Fetch these branches into refs/remotes/<remote>/ (forced: remote branches may be rewritten)."""
    if not branches:
        return
    specs = [f"+refs/heads/{b}:refs/remotes/{remote}/{b}" for b in dict.fromkeys(branches)]
    await run_git(cwd, "fetch", "--quiet", "--no-tags", remote, *specs)


async def commits_ahead(cwd: Path, base: str, ref: str) -> int:
    """Commits reachable from `ref` and not from `base`."""
    result = await run_git(cwd, "rev-list", "--count", f"{base}..{ref}")
    return int(result.stdout.strip() or 0)


async def commit_time(cwd: Path, ref: str) -> int:
    result = await run_git(cwd, "log", "-1", "--format=%ct", ref)
    return int(result.stdout.strip() or 0)


async def is_ancestor(cwd: Path, ancestor: str, ref: str) -> bool:
    result = await run_git(cwd, "merge-base", "--is-ancestor", ancestor, ref, check=False)
    return result.returncode == 0


async def rev_parse(cwd: Path, ref: str) -> str | None:
    result = await run_git(
        cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
    )
    return result.stdout.strip() or None


async def push(
    cwd: Path, src: str, branch: str, *, remote: str = "origin", force: bool = False
) -> bool:
    """Push `src` to `refs/heads/<branch>` on the remote; False when it was already there."""
    spec = f"{'+' if force else ''}{src}:refs/heads/{branch}"
    result = await run_git(cwd, "push", "--porcelain", "--no-verify", remote, spec)
    # Porcelain: one `<flag>\t<from>:<to>\t<summary>` line per ref; `=` means up to date.
    return not any(line.startswith("=\t") for line in result.stdout.splitlines())


async def _identity_args(cwd: Path) -> list[str]:
    email = await run_git(cwd, "config", "user.email", check=False)
    if email.stdout.strip() or os.environ.get("GIT_COMMITTER_EMAIL"):
        return []
    return ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]


@asynccontextmanager
async def scratch_worktree(repo: Path, start: str) -> AsyncIterator[Path]:
    """A temporary detached worktree of `repo` at `start`, removed afterwards whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix="clambake-bundle-"))
    # Forget scratch worktrees of runs that were killed before they could remove theirs.
    await run_git(repo, "worktree", "prune", check=False)
    await run_git(repo, "worktree", "add", "--quiet", "--detach", str(folder), start)
    try:
        yield folder
    finally:
        done = await run_git(repo, "worktree", "remove", "--force", str(folder), check=False)
        if not done.ok:
            shutil.rmtree(folder, ignore_errors=True)
            await run_git(repo, "worktree", "prune", check=False)


async def merge(worktree: Path, ref: str, message: str) -> bool:
    """Merge `ref` into the worktree's HEAD with a merge commit; False (and aborted) on conflict."""
    identity = await _identity_args(worktree)
    result = await run_git(
        worktree, *identity, "merge", "--no-ff", "--no-edit", "-m", message, ref, check=False
    )
    if result.ok:
        return True
    await run_git(worktree, "merge", "--abort", check=False)
    # A merge that failed for another reason than a conflict must not pass for one.
    status = await run_git(worktree, "status", "--porcelain", check=False)
    if status.stdout.strip():
        raise GitError(f"cannot clean up after merging {ref}: {_first_line(status.stdout)}")
    text = result.stdout + result.stderr
    if "CONFLICT" not in text and "conflict" not in text:
        raise GitError(
            f"git merge {ref} failed: {_first_line(result.stderr) or _first_line(result.stdout)}"
        )
    log.info("merge conflict", extra={"ref": ref})
    return False


class MergeTreeUnsupported(GitError):
    """This git has no `merge-tree --write-tree` (before 2.38): merge in a worktree instead."""


async def merge_in_memory(repo: Path, ours: str, theirs: str, message: str) -> str | None:
    """The merge commit of `theirs` into `ours`, made without a working tree; None on conflict.

    `git merge-tree --write-tree` merges in the object store (no checkout of the repository's
    files, which is what makes bundling cheap in a big repository); `commit-tree` records the
    result with both parents, as `git merge --no-ff` would.
    """
    result = await run_git(repo, "merge-tree", "--write-tree", ours, theirs, check=False)
    if result.returncode == 1:
        return None
    if result.returncode != 0:
        if "write-tree" in result.stderr or result.returncode == 129:
            raise MergeTreeUnsupported("git merge-tree --write-tree needs git 2.38 or newer")
        reason = _first_line(result.stderr) or f"exit {result.returncode}"
        raise GitError(f"git merge-tree failed in {repo}: {reason}")
    tree = result.stdout.split()[0]
    identity = await _identity_args(repo)
    commit = await run_git(
        repo, *identity, "commit-tree", tree, "-p", ours, "-p", theirs, "-m", message
    )
    return commit.stdout.strip()
