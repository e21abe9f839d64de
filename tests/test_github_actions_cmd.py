"""`clambake actions` as a user runs it: a real subprocess in a sandbox served by the emulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clambake_tui.commands.actions_cmd import dispatch_bundle
from clambake_tui.github.client import GitHubClient
from clambake_tui.github.errors import ActionsDisabledError
from clambake_tui.metrics import read_events
from clambake_tui.sandbox.emulator import Emulator, JobSpec, RunContext, StepSpec
from clambake_tui.sandbox.setup import SandboxLayout

WORKFLOW = ".github/workflows/clambake-bundling.yml"


def quick_steps(ctx: RunContext) -> list[JobSpec]:
    inputs = ",".join(f"{k}={v}" for k, v in sorted(ctx.inputs.items()))
    return [
        JobSpec(
            "bundle",
            (
                StepSpec("Check the queue", lines=(f"inputs: {inputs}",)),
                StepSpec("Bundle", lines=("bundled 2 issues into one pull request",)),
            ),
        ),
        JobSpec("notify", (StepSpec("Say so", lines=("train departed",)),)),
    ]


@pytest.fixture
def emu(sandbox: SandboxLayout) -> Emulator:
    assert sandbox.emulator is not None
    sandbox.emulator.register_workflow_steps("clambake-bundling.yml", quick_steps)
    return sandbox.emulator


def clambake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clambake_tui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def completed_run(emu: Emulator) -> int:
    run_id = emu.dispatch(WORKFLOW, "main", {"force_bundle": "true", "dry_run": "false"})
    emu.wait_for_run(run_id, timeout=30)
    return run_id


def test_status_prints_the_bundling_workflows_real_runs(emu: Emulator):
    run_id = completed_run(emu)
    run = emu.run(run_id)
    done = clambake("actions", "--status")
    assert done.returncode == 0, done.stderr
    for text in (
        str(run["run_number"]),
        str(run_id),
        "completed",
        "success",
        "main",
        run["html_url"],
    ):
        assert text in done.stdout
    as_json = json.loads(clambake("actions", "--status", "--json").stdout)
    assert [(r["id"], r["status"], r["conclusion"], r["branch"]) for r in as_json] == [
        (run_id, "completed", "success", "main")
    ]


def test_logs_print_each_job_and_step(emu: Emulator):
    run_id = completed_run(emu)
    done = clambake("actions", "--logs", "--run-id", str(run_id))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "=== job: bundle" in out and "=== job: notify" in out
    assert "Check the queue" in out and "inputs: dry_run=false,force_bundle=true" in out
    assert out.index("bundled 2 issues") < out.index("train departed")
    narrowed = clambake("actions", "--logs", "--run-id", str(run_id), "--job", "notify")
    assert "train departed" in narrowed.stdout and "bundled 2 issues" not in narrowed.stdout
    missing = clambake("actions", "--logs", "--run-id", str(run_id), "--job", "deploy")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"clambake: error: run {run_id} has no job named 'deploy' (its jobs: bundle, notify)"
    )


def test_trigger_bundle_reports_the_run_it_started_and_how_long_it_took(
    emu: Emulator, sandbox: SandboxLayout
):
    done = clambake("actions", "--trigger-bundle", "--force")
    assert done.returncode == 0, done.stderr
    [run] = emu.runs()
    assert f"run {run['id']}" in done.stdout
    assert f"clambake actions --watch --run-id {run['id']}" in done.stdout
    [dispatch] = [
        e
        for e in read_events(sandbox.work / ".clambake" / "metrics.jsonl")
        if e["event"] == "actions.dispatch"
    ]
    assert dispatch["ok"] is True and dispatch["run_id"] == run["id"]
    assert dispatch["workflow"] == "clambake-bundling.yml" and dispatch["latency_s"] >= 0
    emu.wait_for_run(run["id"], timeout=30)
    # Exactly the inputs the workflow declares, as strings.
    assert (
        "inputs: dry_run=false,force_bundle=true"
        in clambake("actions", "--logs", "--run-id", str(run["id"])).stdout
    )


def test_watch_follows_a_run_until_it_completes(emu: Emulator):
    emu.hold_runs()
    run_id = emu.dispatch(WORKFLOW, "main", {})
    watcher = subprocess.Popen(
        [sys.executable, "-m", "clambake_tui", "actions", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert first.startswith(f"watching run {run_id}")
        seen = watcher.stdout.readline()  # the first poll, while the run is held in the queue
        assert seen.endswith(f"run {run_id}: queued\n")
        emu.release_runs()
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert f"run {run_id} completed: success" in out


def test_cancel_and_rerun_a_run(emu: Emulator):
    emu.hold_runs()
    run_id = emu.dispatch(WORKFLOW, "main", {})
    cancelled = clambake("actions", "--cancel", "--run-id", str(run_id))
    assert cancelled.returncode == 0, cancelled.stderr
    emu.release_runs()
    assert emu.wait_for_run(run_id, timeout=30)["conclusion"] == "cancelled"
    again = clambake("actions", "--rerun", "--run-id", str(run_id), "--failed")
    assert again.returncode == 0, again.stderr
    assert emu.wait_for_run(run_id, timeout=30)["run_attempt"] == 2


def test_a_switched_off_manual_trigger_says_so_and_dispatches_nothing(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CLAMBAKE_GITHUB_ACTIONS__MANUAL_TRIGGER_ENABLED", "false")
    done = clambake("actions", "--trigger-bundle")
    # The reason is stated (a local bundle may follow, as the bundling settings decide).
    assert (
        "dispatching the bundling workflow by hand is switched off "
        "(github_actions.manual_trigger_enabled = false)"
    ) in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert emu.runs() == []


async def test_dispatch_bundle_refuses_when_actions_bundling_is_off(emu: Emulator):
    from clambake_tui.config import Config, GitHubActionsConfig

    config = Config(github_actions=GitHubActionsConfig(enabled=False))
    async with GitHubClient("clambake", "sandbox", api_url=emu.url, token=emu.token) as gh:
        with pytest.raises(ActionsDisabledError, match=r"github_actions\.enabled = false"):
            await dispatch_bundle(gh, config, True, False)
    assert emu.runs() == []


def test_without_a_token_a_dispatch_says_how_to_provide_one(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.setenv("PATH", "/nonexistent")  # and no gh to ask
    done = clambake("actions", "--trigger-bundle")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "clambake: error: no GitHub token for this command: export GH_TOKEN="
    )
    assert "Traceback" not in done.stderr


def test_errors_are_one_line_and_never_show_the_token(emu: Emulator, sandbox: SandboxLayout):
    done = clambake("-v", "actions", "--logs", "--run-id", "987654")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == "clambake: error: GitHub said 404 for run 987654: Not Found"
    assert "Traceback" not in done.stderr
    assert sandbox.token not in done.stdout + done.stderr
    for log in (sandbox.work / ".clambake").rglob("*.json*"):
        assert sandbox.token not in log.read_text()
