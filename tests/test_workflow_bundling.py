"""The bundling workflow file: shipped and packaged copies, triggers, permissions, pins, linters."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from clambake_tui import __version__
from clambake_tui.bundling.trigger import dispatch_inputs
from clambake_tui.bundling.workflow import (
    WORKFLOW_INPUTS,
    install_workflow,
    packaged_workflow,
    render_workflow,
)
from clambake_tui.config import Config
from clambake_tui.errors import ClambakeError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / ".github" / "workflows" / "clambake-bundling.yml"


def load() -> dict[str, Any]:
    data = yaml.safe_load(SHIPPED.read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps() -> list[dict[str, Any]]:
    return load()["jobs"]["bundle"]["steps"]


def test_the_packaged_copy_is_identical_to_the_shipped_workflow() -> None:
    assert packaged_workflow() == SHIPPED.read_text()


def test_it_runs_on_the_train_schedule_and_on_dispatch_with_two_boolean_inputs() -> None:
    on = load()["on"]
    assert on["schedule"] == [{"cron": "*/10 * * * *"}]
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == set(WORKFLOW_INPUTS)
    assert all(spec["type"] == "boolean" and spec["default"] is False for spec in inputs.values())


def test_the_trigger_sends_only_the_declared_inputs() -> None:
    assert set(dispatch_inputs(True, False)) == set(WORKFLOW_INPUTS)


def test_permissions_are_exactly_what_bundling_needs() -> None:
    data = load()
    assert data["permissions"] == {}
    assert data["jobs"]["bundle"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "issues": "write",
    }


def test_two_runs_never_bundle_at_once() -> None:
    concurrency = load()["concurrency"]
    assert "clambake-bundling" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False


def test_timeout_is_the_configured_default_and_install_writes_the_configured_value() -> None:
    config = Config()
    assert (
        load()["jobs"]["bundle"]["timeout-minutes"]
        == config.github_actions.workflow_timeout_minutes
    )
    custom = replace(
        config, github_actions=replace(config.github_actions, workflow_timeout_minutes=42)
    )
    rendered = yaml.safe_load(render_workflow(custom))
    assert rendered["jobs"]["bundle"]["timeout-minutes"] == 42
    assert render_workflow(config) == SHIPPED.read_text()


def test_actions_are_pinned_by_full_commit_sha_with_a_version_comment() -> None:
    uses = [line.strip() for line in SHIPPED.read_text().splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_no_expression_is_expanded_inside_a_run_script() -> None:
    for step in steps():
        assert "${{" not in step.get("run", ""), step["name"]


def test_the_check_step_gates_the_bundle_step_and_both_get_the_token() -> None:
    by_name = {s["name"]: s for s in steps()}
    check, bundle = by_name["Check the queue"], by_name["Bundle"]
    assert check["id"] == "check"
    assert "clambake bundle --local --check" in check["run"]
    assert bundle["if"] == "steps.check.outputs.should_bundle == 'true'"
    assert "clambake bundle" in bundle["run"]
    for step in (check, bundle):
        assert step["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_the_job_installs_the_release_matching_this_version() -> None:
    install = next(s for s in steps() if s["name"] == "Install clambake")
    assert install["env"]["CLAMBAKE_PACKAGE"] == f"clambake-tui=={__version__}"


def test_install_workflow_writes_it_once_and_keeps_a_users_edited_copy(tmp_path: Path) -> None:
    first = install_workflow(tmp_path, Config())
    assert first.changed
    assert first.path == tmp_path / ".github" / "workflows" / "clambake-bundling.yml"
    assert first.path.read_text() == SHIPPED.read_text()
    assert not install_workflow(tmp_path, Config()).changed
    first.path.write_text(first.path.read_text() + "# mine\n")
    with pytest.raises(ClambakeError, match="--force"):
        install_workflow(tmp_path, Config())
    assert first.path.read_text().endswith("# mine\n")
    assert install_workflow(tmp_path, Config(), overwrite=True).changed


@pytest.mark.parametrize("linter", ["actionlint", "zizmor"])
def test_the_workflow_linters_find_nothing(linter: str) -> None:
    exe = shutil.which(linter) or str(Path(__import__("sys").executable).parent / linter)
    if not Path(exe).exists():
        pytest.skip(f"{linter} is not installed (pip install -e '.[dev]')")
    args = (
        [exe, str(SHIPPED)]
        if linter == "actionlint"
        else [exe, "--offline", "--persona=pedantic", str(SHIPPED)]
    )
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_install_workflow_command_writes_the_configured_timeout(git_repo: Path) -> None:
    import os
    import sys

    def install(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clambake_tui.cli", "actions", "--install-workflow", *extra],
            cwd=git_repo,
            env={**os.environ, "CLAMBAKE_GITHUB_ACTIONS__WORKFLOW_TIMEOUT_MINUTES": "30"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    first = install()
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote .github/workflows/clambake-bundling.yml")
    written = yaml.safe_load((git_repo / ".github/workflows/clambake-bundling.yml").read_text())
    assert written["jobs"]["bundle"]["timeout-minutes"] == 30
    assert "already up to date" in install().stdout
