"""The installed package: console scripts, --version/--help, and a command line without Textual."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from clambake_tui import __version__

BIN = Path(sys.executable).parent


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAMBAKE_")}
    env["CLAMBAKE_ROOT"] = str(cwd)
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


def test_both_console_scripts_are_declared_and_load() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    assert scripts["clambake"].value == "clambake_tui.cli:main"
    assert scripts["clambake-tui"].value == "clambake_tui.cli:tui_main"
    assert callable(scripts["clambake"].load()) and callable(scripts["clambake-tui"].load())


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        ((str(BIN / "clambake"),), "clambake"),
        ((str(BIN / "clambake-tui"),), "clambake-tui"),
        ((sys.executable, "-m", "clambake_tui"), "clambake"),
    ],
)
def test_version_and_help_work(tmp_path: Path, argv: tuple[str, ...], prog: str) -> None:
    version = run(*argv, "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"{prog} {__version__}\n"
    usage = run(*argv, "--help", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith(f"usage: {prog}")
    assert "Traceback" not in usage.stderr


def test_config_and_metrics_are_listed_in_help(tmp_path: Path) -> None:
    out = run(str(BIN / "clambake"), "--help", cwd=tmp_path).stdout
    assert "show or change clambake.toml" in out
    assert "numbers computed from recorded events" in out


def imported_after(code: str, cwd: Path) -> set[str]:
    probe = (
        f"import sys\n{code}\nprint('\\n'.join(sorted(m for m in sys.modules)), file=sys.stderr)\n"
    )
    done = run(sys.executable, "-c", probe, cwd=cwd)
    return set(done.stderr.splitlines())


def test_clambake_help_does_not_import_textual(tmp_path: Path) -> None:
    modules = imported_after(
        "from clambake_tui.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        tmp_path,
    )
    assert "clambake_tui.cli" in modules  # the probe really ran
    assert not {m for m in modules if m == "textual" or m.startswith("textual.")}


def test_clambake_config_and_metrics_do_not_import_textual(tmp_path: Path) -> None:
    modules = imported_after(
        "from clambake_tui.cli import main\nmain(['config', 'show'])\nmain(['metrics', '--json'])",
        tmp_path,
    )
    assert "clambake_tui.commands.metrics_cmd" in modules
    assert "textual" not in modules
