"""Reads (and a few writes) on the bare git repository that backs an emulated GitHub repository."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BareRepo", "CommitInfo", "GitFailed"]


class GitFailed(RuntimeError):
    """A git command against the bare repository failed."""


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str


# Objects named by a full sha never change: what git says about them is cached.
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 4096
_COMMITS: dict[tuple[str, str], CommitInfo] = {}
_FILES: dict[tuple[str, str, str], str | None] = {}


def _is_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    with _CACHE_LOCK:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = value


class BareRepo:
    """One bare repository: branches, refs, files at a commit, ancestry. Every call runs git."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _git(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["git", "--git-dir", str(self.path), *args],
            capture_output=True,
            text=True,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
        if check and done.returncode != 0:
            raise GitFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else ""

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str]]:
        """(full ref name, sha) pairs under `prefix`, sorted by name."""
        out = self._git("for-each-ref", "--format=%(refname) %(objectname)", prefix, check=False)
        pairs = []
        for line in out.splitlines():
            name, _, sha = line.partition(" ")
            if name.startswith(prefix):
                pairs.append((name, sha))
        return sorted(pairs)

    def branches(self) -> list[tuple[str, str]]:
        return [(name.removeprefix("refs/heads/"), sha) for name, sha in self.refs("refs/heads/")]

    def branch_sha(self, branch: str) -> str | None:
        return self.resolve(f"refs/heads/{branch}")

    def resolve(self, ref: str) -> str | None:
        """The commit sha `ref` names, or None."""
        if not ref or ref.startswith("-"):
            return None
        out = self._git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return out.strip() or None

    def resolve_branch_or_tag(self, ref: str) -> tuple[str, str] | None:
        """(short name, sha) for a branch or tag name (or refs/heads/x, refs/tags/x)."""
        for full in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if not full.startswith(("refs/heads/", "refs/tags/")):
                continue
            sha = self.resolve(full)
            if sha:
                return full.removeprefix("refs/heads/").removeprefix("refs/tags/"), sha
        return None

    def read_file(self, sha: str, path: str) -> str | None:
        """A file's text at a commit (cached by sha), None if it is not there."""
        if not _is_sha(sha):
            return self._read_file(sha, path)
        key = (str(self.path), sha, path)
        if key not in _FILES:
            _remember(_FILES, key, self._read_file(sha, path))
        return _FILES[key]

    def _read_file(self, sha: str, path: str) -> str | None:
        done = subprocess.run(
            ["git", "--git-dir", str(self.path), "show", f"{sha}:{path}"],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            return None
        return done.stdout.decode("utf-8", errors="replace")

    def list_dir(self, sha: str, folder: str) -> list[str]:
        key = (str(self.path), sha, folder + "/")
        if _is_sha(sha) and key in _FILES:
            return (_FILES[key] or "").splitlines()
        out = self._git("ls-tree", "--name-only", f"{sha}:{folder}", check=False)
        names = [line for line in out.splitlines() if line]
        if _is_sha(sha):
            _remember(_FILES, key, "\n".join(names))
        return names

    def commit(self, sha: str) -> CommitInfo:
        """A commit's metadata (cached: a sha names the same commit forever)."""
        if not _is_sha(sha):
            return self._commit(sha)
        key = (str(self.path), sha)
        cached = _COMMITS.get(key)
        if cached is None:
            cached = self._commit(sha)
            _remember(_COMMITS, key, cached)
        return cached

    def _commit(self, sha: str) -> CommitInfo:
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        out = self._git("show", "-s", f"--format={fmt}", sha)
        parts = out.split("\x00")
        return CommitInfo(
            sha=parts[0],
            tree=parts[1],
            parents=tuple(parts[2].split()),
            author_name=parts[3],
            author_email=parts[4],
            author_date=parts[5],
            committer_name=parts[6],
            committer_email=parts[7],
            committer_date=parts[8],
            message=parts[9].rstrip("\n"),
        )

    def count_commits(self, base: str, head: str) -> int:
        """Commits reachable from head and not from base."""
        out = self._git("rev-list", "--count", f"{base}..{head}", check=False)
        return int(out.strip() or 0)

    def diff_stats(self, base: str, head: str) -> tuple[int, int, int]:
        """(additions, deletions, changed files) of head against the merge base with base."""
        out = self._git("diff", "--numstat", f"{base}...{head}", check=False)
        adds = dels = files = 0
        for line in out.splitlines():
            a, d, *_ = line.split("\t")
            files += 1
            adds += int(a) if a.isdigit() else 0
            dels += int(d) if d.isdigit() else 0
        return adds, dels, files

    def update_ref(self, ref: str, sha: str, old: str | None = None) -> None:
        args = ["update-ref", ref, sha] + ([old] if old else [])
        self._git(*args)

    def delete_ref(self, ref: str) -> None:
        self._git("update-ref", "-d", ref)

    def merge(
        self, base_sha: str, head_sha: str, message: str, *, squash: bool = False
    ) -> str | None:
        """A merge commit (or a squashed one) of head onto base, without a work tree; None on conflict."""
        done = subprocess.run(
            ["git", "--git-dir", str(self.path), "merge-tree", "--write-tree", base_sha, head_sha],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return None
        tree = done.stdout.splitlines()[0].strip()
        parents = ["-p", base_sha] if squash else ["-p", base_sha, "-p", head_sha]
        # GitHub signs web merges as itself, whoever clicked the button.
        identity = {
            "GIT_AUTHOR_NAME": "GitHub",
            "GIT_AUTHOR_EMAIL": "noreply@github.com",
            "GIT_COMMITTER_NAME": "GitHub",
            "GIT_COMMITTER_EMAIL": "noreply@github.com",
        }
        return self._git("commit-tree", tree, *parents, "-m", message, env=identity).strip()

    def is_ancestor(self, maybe_ancestor: str, sha: str) -> bool:
        done = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.path),
                "merge-base",
                "--is-ancestor",
                maybe_ancestor,
                sha,
            ],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0
