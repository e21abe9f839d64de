"""The rehearsal sandbox: its layout, `clambake sandbox init` and `serve` together, saved state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clambake_tui.config import load_config
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.setup import DEFAULT_ISSUES, SandboxLayout, build_sandbox
from tests.fixtures.common import git

CLAMBAKE = str(Path(sys.executable).with_name("clambake"))


def test_the_sandbox_is_a_bare_origin_a_clone_with_config_and_ready_issues(
    sandbox: SandboxLayout,
) -> None:
    assert (sandbox.origin / "HEAD").is_file()
    assert git(sandbox.work, "remote", "get-url", "origin") == str(sandbox.origin)
    assert Path.cwd() == sandbox.work
    assert os.environ["GH_TOKEN"] == sandbox.token
    config = load_config(sandbox.config_path)
    assert config.github.api_url == sandbox.url
    assert (config.github.owner, config.github.repo) == ("clambake", "sandbox")
    agent = Path(config.agents.claude_code_path)
    assert agent.is_absolute() and agent.name == "clambake-standin-agent"
    tracked = git(sandbox.work, "ls-files").splitlines()
    assert ".github/workflows/clambake-bundling.yml" in tracked
    assert "src/tally/__init__.py" in tracked
    assert git(sandbox.work, "status", "--porcelain") == ""

    gh = httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token}"})
    issues = gh.get("/repos/clambake/sandbox/issues", params={"labels": "route:ready"}).json()
    assert len(issues) == len(DEFAULT_ISSUES) == len(sandbox.issue_numbers)
    assert any("route:priority-very-high" in [lb["name"] for lb in i["labels"]] for i in issues)
    labels = {
        lb["name"]
        for lb in gh.get("/repos/clambake/sandbox/labels", params={"per_page": 100}).json()
    }
    assert {"route:ready", "route:review", "route:priority-low", "agent001", "agent010"} <= labels
    workflows = gh.get("/repos/clambake/sandbox/actions/workflows").json()["workflows"]
    assert [w["path"] for w in workflows] == [".github/workflows/clambake-bundling.yml"]


def test_a_folder_that_holds_a_sandbox_is_refused(tmp_path: Path) -> None:
    with Emulator() as emu:
        build_sandbox(tmp_path / "s", emulator=emu, issues=())
        from clambake_tui.errors import ClambakeError

        with pytest.raises(ClambakeError, match="already holds a sandbox"):
            build_sandbox(tmp_path / "s", emulator=emu, issues=())


def test_the_bundling_workflow_runs_clambake_bundle_against_the_emulator(
    sandbox: SandboxLayout,
) -> None:
    emu = sandbox.emulator
    assert emu is not None
    gh = httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token}"})
    resp = gh.post(
        "/repos/clambake/sandbox/actions/workflows/clambake-bundling.yml/dispatches",
        json={"ref": "main", "inputs": {"dry_run": "true"}, "return_run_details": True},
    )
    assert resp.status_code == 200, resp.text
    run = emu.wait_for_run(resp.json()["workflow_run_id"], timeout=120)
    (job,) = emu.jobs(run["id"])
    names = [s["name"] for s in job["steps"]]
    assert names[:1] == ["Set up job"] and names[-1] == "Complete job"
    assert "Check the queue" in names and "Bundle" in names
    check = next(s for s in job["steps"] if s["name"] == "Check the queue")
    log = emu.job_log(job["id"])
    assert check["conclusion"] == "success", log
    assert "should_bundle=" in log


# init + serve, as a person rehearsing would use them --------------------------------------------
def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [CLAMBAKE, "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "GitHub emulator serving" in first, first + (
        proc.stderr.read() if proc.poll() is not None else ""
    )
    url = first.rsplit(" at ", 1)[1].strip()
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_init_then_serve_rehearses_with_the_printed_exports(tmp_path: Path) -> None:
    folder = tmp_path / "rehearsal"
    init = subprocess.run(
        [CLAMBAKE, "sandbox", "init", str(folder)], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    exports = [
        line.strip()
        for line in init.stdout.splitlines()
        if line.strip().startswith(("export ", "cd "))
    ]
    token = next(line for line in exports if line.startswith("export GH_TOKEN=")).split("=", 1)[1]
    assert f"cd {folder / 'work'}" in exports
    assert f"clambake sandbox serve --state {folder / 'emulator.json'}" in init.stdout
    config = load_config(folder / "work" / "clambake.toml")

    proc, url = _serve("--state", str(folder / "emulator.json"))
    try:
        assert url == config.github.api_url
        gh = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        issues = gh.get("/repos/clambake/sandbox/issues").json()
        assert len(issues) == len(DEFAULT_ISSUES)
        made = gh.post("/repos/clambake/sandbox/issues", json={"title": "Added while serving"})
        assert made.status_code == 201
    finally:
        _stop(proc)

    # The state file kept it: a second serve answers the same issues with the same token.
    proc, url = _serve("--state", str(folder / "emulator.json"))
    try:
        gh = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        titles = [i["title"] for i in gh.get("/repos/clambake/sandbox/issues").json()]
        assert titles[0] == "Added while serving"
    finally:
        _stop(proc)


def test_serve_a_bare_repository_with_faults_from_flags(origin_repo: Path, tmp_path: Path) -> None:
    proc, url = _serve(
        "--repo",
        str(origin_repo),
        "--name",
        "demo",
        "--token",
        "ghp_" + "a" * 36,
        "--fault",
        json.dumps({"kind": "error", "status": 502, "times": 1}),
    )
    try:
        gh = httpx.Client(base_url=url, headers={"Authorization": "Bearer ghp_" + "a" * 36})
        assert gh.get("/repos/clambake/demo").status_code == 502
        assert gh.get("/repos/clambake/demo").json()["default_branch"] == "main"
    finally:
        _stop(proc)


def test_serve_without_anything_to_serve_says_what_to_give() -> None:
    done = subprocess.run([CLAMBAKE, "sandbox", "serve"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("clambake: error: nothing to serve")
    assert "Traceback" not in done.stderr


def test_a_bad_fault_flag_is_one_clear_line(origin_repo: Path) -> None:
    done = subprocess.run(
        [
            CLAMBAKE,
            "sandbox",
            "serve",
            "--repo",
            str(origin_repo),
            "--fault",
            '{"kind": "gremlins"}',
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "unknown fault kind 'gremlins'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_emulator_state_file_round_trips_issues_runs_and_the_token(
    origin_repo: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state) as emu:
        emu.add_repo("o", "r", origin_repo)
        n = emu.add_issue("kept", labels=["route:ready"])
        token = emu.token
    saved = json.loads(state.read_text())
    assert saved["token"] == token
    with Emulator(state_file=state) as again:
        assert again.token == token
        assert again.issue(n)["title"] == "kept"
        assert again.issue_labels(n) == ["route:ready"]


def test_startup_is_quick_enough_for_every_test_to_have_its_own(origin_repo: Path) -> None:
    # Not a timing assertion: the number goes to bench/; here only that start() returns serving.
    started = time.perf_counter()
    with Emulator() as emu:
        emu.add_repo("o", "r", origin_repo)
        assert httpx.get(f"{emu.url}/repos/o/r").status_code == 200
    assert time.perf_counter() - started < 30


def test_init_refuses_a_folder_with_files_and_serve_a_state_whose_repository_is_gone(
    tmp_path: Path,
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    done = subprocess.run([CLAMBAKE, "sandbox", "init", str(busy)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "is not empty" in done.stderr
    assert (busy / "notes.txt").read_text() == "mine"

    folder = tmp_path / "gone"
    assert (
        subprocess.run([CLAMBAKE, "sandbox", "init", str(folder)], capture_output=True).returncode
        == 0
    )
    shutil.rmtree(folder / "origin.git")
    served = subprocess.run(
        [CLAMBAKE, "sandbox", "serve", "--state", str(folder / "emulator.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 1
    assert "is gone" in served.stderr and "sandbox init" in served.stderr
