"""A rehearsal sandbox on disk: a bare origin, a clone with clambake.toml, and seeded issues."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clambake_tui.errors import ClambakeError
from clambake_tui.sandbox.emulator import Emulator

__all__ = [
    "SeedIssue",
    "SandboxLayout",
    "DEFAULT_ISSUES",
    "SANDBOX_LABELS",
    "SANDBOX_OWNER",
    "SANDBOX_REPO",
    "STATE_FILE_NAME",
    "build_sandbox",
    "standin_agent_path",
]

SANDBOX_OWNER = "clambake"
SANDBOX_REPO = "sandbox"
STATE_FILE_NAME = "emulator.json"
BUNDLING_WORKFLOW_PATH = ".github/workflows/clambake-bundling.yml"


@dataclass(frozen=True, slots=True)
class SeedIssue:
    title: str
    body: str
    labels: tuple[str, ...]


# (name, colour, description): every label the routing and the agents use.
SANDBOX_LABELS: tuple[tuple[str, str, str], ...] = (
    ("route:ready", "0e8a16", "Free for an agent to take"),
    ("route:review", "fbca04", "Work pushed, waiting for bundling"),
    ("route:ready_to_merge", "1d76db", "Bundled and ready to merge"),
    ("route:unblocker", "b60205", "Take this one first"),
    ("route:human-only", "5319e7", "Never give this to an agent"),
    ("route:priority-very-high", "b60205", "Priority: very high"),
    ("route:priority-high", "d93f0b", "Priority: high"),
    ("route:priority-medium", "fbca04", "Priority: medium"),
    ("route:priority-low", "c2e0c6", "Priority: low"),
    *((f"agent{n:03d}", "bfdadc", f"Held by agent{n:03d}") for n in range(1, 11)),
)

DEFAULT_ISSUES: tuple[SeedIssue, ...] = (
    SeedIssue(
        "Count words case-insensitively",
        '`tally.count_words("The the")` returns two entries. Words that differ only in case '
        'should be counted together.\n\nAcceptance: `count_words("The the") == {"the": 2}`.',
        ("route:ready", "route:priority-high"),
    ),
    SeedIssue(
        "Ignore punctuation around words",
        '`count_words("hello, world!")` counts `hello,` and `world!`. Strip leading and '
        "trailing punctuation before counting.",
        ("route:ready", "route:priority-very-high"),
    ),
    SeedIssue(
        "Add a --top N option to the command line",
        "`python -m tally FILE --top 3` should print only the three most frequent words, "
        "most frequent first, ties by word.",
        ("route:ready", "route:priority-medium"),
    ),
    SeedIssue(
        "Read standard input when no file is given",
        "`echo 'a b a' | python -m tally` should work like a file argument.",
        ("route:ready", "route:priority-medium"),
    ),
    SeedIssue(
        "Report the number of lines too",
        "Add `count_lines(text)` and print `lines: N` after the word counts.",
        ("route:ready", "route:priority-low"),
    ),
    SeedIssue(
        "Document the public API in the README",
        "The README says nothing about `count_words` and `top_words`. Add a short usage section.",
        ("route:ready",),
    ),
)

_PROJECT_FILES: dict[str, str] = {
    "README.md": "# tally\n\nCount the words in a text file.\n\n    python -m tally FILE\n",
    ".gitignore": "__pycache__/\n*.pyc\n.clambake/\n",
    "pyproject.toml": (
        '[project]\nname = "tally"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n'
    ),
    "src/tally/__init__.py": (
        '"""Word counts of a text."""\n\nfrom collections import Counter\n\n\n'
        "def count_words(text: str) -> dict[str, int]:\n"
        "    return dict(Counter(text.split()))\n\n\n"
        "def top_words(text: str, n: int) -> list[tuple[str, int]]:\n"
        "    return Counter(text.split()).most_common(n)\n"
    ),
    "src/tally/__main__.py": (
        "import sys\n\nfrom tally import count_words\n\n"
        "with open(sys.argv[1]) as handle:\n"
        "    for word, count in sorted(count_words(handle.read()).items()):\n"
        '        print(f"{word}: {count}")\n'
    ),
    "tests/test_tally.py": (
        "from tally import count_words, top_words\n\n\n"
        "def test_counts_each_word():\n"
        '    assert count_words("a b a") == {"a": 2, "b": 1}\n\n\n'
        "def test_top_words_orders_by_count():\n"
        '    assert top_words("a b a", 1) == [("a", 2)]\n'
    ),
}


@dataclass(frozen=True)
class SandboxLayout:
    """Where a sandbox lives and what to export to use it."""

    folder: Path
    origin: Path
    work: Path
    config_path: Path
    owner: str
    repo: str
    url: str
    token: str
    issue_numbers: tuple[int, ...]
    state_file: Path | None = None
    emulator: Emulator | None = field(default=None, compare=False, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for clambake in the sandbox (the URL is already in clambake.toml)."""
        return {"GH_TOKEN": self.token}

    @property
    def export_lines(self) -> tuple[str, ...]:
        return (
            f"export GH_TOKEN={shlex.quote(self.token)}",
            f"cd {shlex.quote(str(self.work))}",
        )


def standin_agent_path() -> Path:
    """The stand-in for Claude Code installed beside this interpreter."""
    return Path(sys.executable).with_name("clambake-standin-agent")


def _git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Sandbox Operator",
        "GIT_AUTHOR_EMAIL": "operator@sandbox.invalid",
        "GIT_COMMITTER_NAME": "Sandbox Operator",
        "GIT_COMMITTER_EMAIL": "operator@sandbox.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise ClambakeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")


def bundling_workflow_text() -> str:
    """The bundling workflow as the product ships it."""
    from clambake_tui.bundling.workflow import packaged_workflow

    return packaged_workflow()


def _config_text(url: str, owner: str, repo: str) -> str:
    agent = standin_agent_path()
    return (
        "# A rehearsal sandbox: GitHub is the local emulator, the agents are the stand-in.\n"
        "[github]\n"
        f'owner = "{owner}"\n'
        f'repo = "{repo}"\n'
        f'api_url = "{url}"\n'
        'default_branch = "main"\n\n'
        "[agents]\n"
        f"claude_code_path = {_toml_string(str(agent))}\n"
        "max_concurrent = 3\n"
    )


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_sandbox(
    folder: Path,
    *,
    emulator: Emulator | None = None,
    issues: Sequence[SeedIssue] = DEFAULT_ISSUES,
    owner: str = SANDBOX_OWNER,
    repo: str = SANDBOX_REPO,
    port: int | None = None,
) -> SandboxLayout:
    """Lay out `folder`: origin.git (bare, with a small Python project and the bundling workflow
    on main), work/ (a clone with clambake.toml), and the issues and labels in the emulator.

    With `emulator`, it serves the sandbox right away. Without, the state goes to
    `folder/emulator.json` for `clambake sandbox serve --state` (on `port`, or a free one now).
    """
    folder = Path(folder).resolve()
    origin = folder / "origin.git"
    work = folder / "work"
    if origin.exists() or work.exists():
        raise ClambakeError(f"{folder} already holds a sandbox: choose an empty folder")
    folder.mkdir(parents=True, exist_ok=True)

    state_file: Path | None = None
    own = emulator is None
    if emulator is None:
        state_file = folder / STATE_FILE_NAME
        emulator = Emulator(port=port if port is not None else _free_port(), state_file=state_file)
    url = emulator.url

    seed = folder / ".seed"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    for name, text in _PROJECT_FILES.items():
        path = seed / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    workflow = seed / BUNDLING_WORKFLOW_PATH
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(bundling_workflow_text())
    (seed / "clambake.toml").write_text(_config_text(url, owner, repo))
    _git(seed, "add", "-A")
    _git(seed, "commit", "-q", "-m", "tally: count the words of a text")
    _git(folder, "clone", "-q", "--bare", str(seed), str(origin))
    _git(folder, "clone", "-q", str(origin), str(work))
    _git(work, "config", "user.name", "Sandbox Operator")
    _git(work, "config", "user.email", "operator@sandbox.invalid")
    _remove_tree(seed)

    full_name = emulator.add_repo(owner, repo, origin, default_branch="main")
    for name, color, description in SANDBOX_LABELS:
        emulator.add_label(name, color, description, repo=full_name)
    numbers = tuple(emulator.add_issue(i.title, i.body, i.labels, repo=full_name) for i in issues)
    emulator.save()
    layout = SandboxLayout(
        folder=folder,
        origin=origin,
        work=work,
        config_path=work / "clambake.toml",
        owner=owner,
        repo=repo,
        url=url,
        token=emulator.token,
        issue_numbers=numbers,
        state_file=state_file,
        emulator=None if own else emulator,
    )
    if own:
        emulator.stop()
    return layout


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
