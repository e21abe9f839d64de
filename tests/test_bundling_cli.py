"""`clambake bundle` from the command line: the help defines the window, --check outside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def clambake(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "clambake_tui.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_help_defines_the_departure_window(git_repo: Path) -> None:
    done = clambake("bundle", "--help", cwd=git_repo)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "first half of the interval after a departure" in text
    assert "from :20:00 up to but not including :25:00" in text
    for flag in ("--force", "--dry-run", "--local", "--check"):
        assert flag in done.stdout


def test_check_outside_the_window_says_false_and_writes_the_step_output(
    git_repo: Path, tmp_path: Path
) -> None:
    output = tmp_path / "github_output"
    done = clambake(
        "bundle",
        "--check",
        cwd=git_repo,
        env={
            "CLAMBAKE_NOW": "2026-04-07T14:27:00Z",
            "GH_TOKEN": "ghp_" + "x" * 36,
            "GITHUB_OUTPUT": str(output),
            "CLAMBAKE_GITHUB__OWNER": "octo",
            "CLAMBAKE_GITHUB__REPO": "sandbox",
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "should_bundle=false"
    assert "next train leaves at 14:30 UTC" in done.stdout
    assert output.read_text() == "should_bundle=false\n"


@pytest.mark.parametrize("args", [("bundle", "--force"), ("bundle", "--local", "--dry-run")])
def test_without_a_token_it_says_how_to_provide_one(git_repo: Path, args: tuple[str, ...]) -> None:
    done = clambake(
        *args,
        cwd=git_repo,
        env={
            "CLAMBAKE_GITHUB__OWNER": "octo",
            "CLAMBAKE_GITHUB__REPO": "sandbox",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert done.returncode != 0
    assert done.stderr.startswith("clambake: error:")
    assert "Traceback" not in done.stderr
