"""The scheduled train on the emulator's Actions: inside the window it leaves, outside it waits."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.fixtures.bundling import INSIDE_WINDOW, TrainRepo, workflow_as_written


def queue_two(repo: TrainRepo, push) -> tuple[int, int]:
    a = repo.emulator.add_issue("Fix login", labels=["route:review"])
    b = repo.emulator.add_issue("Add docs", labels=["route:review", "route:priority-medium"])
    push(f"agent001/{a}-fix-login", {"login.txt": "fixed\n"})
    push(f"agent002/{b}", {"docs.txt": "docs\n"})
    return a, b


def job_log(repo: TrainRepo, run_id: int) -> str:
    (job,) = repo.emulator.jobs(run_id)
    return repo.emulator.job_log(job["id"])


def test_a_scheduled_run_in_the_window_takes_the_train_under_its_departure_time(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    a, b = queue_two(train_repo, agent_branch_pusher)
    train_repo.emulator.register_workflow_steps(
        "clambake-bundling.yml", workflow_as_written({"CLAMBAKE_NOW": INSIDE_WINDOW})
    )
    (run_id,) = train_repo.emulator.tick_schedule()
    run = train_repo.emulator.wait_for_run(run_id, timeout=60)
    assert run["event"] == "schedule" and run["conclusion"] == "success", job_log(
        train_repo, run_id
    )
    (pull,) = train_repo.pulls()
    assert pull["title"] == "[BUNDLE] 2 issues - 14:20 train"
    # Priority first: #b (medium) leaves before #a (no priority label).
    assert pull["pull"]["head_ref"] == f"bundle/20260407_1420__issues_{b}_{a}"


def test_a_scheduled_run_outside_the_window_skips_the_bundle_step_and_names_the_next_train(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_two(train_repo, agent_branch_pusher)
    (run_id,) = train_repo.emulator.tick_schedule()
    run = train_repo.emulator.wait_for_run(run_id, timeout=60)
    assert run["conclusion"] == "success"
    (job,) = train_repo.emulator.jobs(run_id)
    steps = {s["name"]: s["conclusion"] for s in job["steps"]}
    assert steps["Check the queue"] == "success" and steps["Bundle"] == "skipped"
    log = job_log(train_repo, run_id)
    assert "should_bundle=false" in log and "next train leaves at 14:30 UTC" in log
    assert train_repo.pulls() == []


def test_bundle_outside_actions_dispatches_the_workflow_instead_of_bundling_here(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_two(train_repo, agent_branch_pusher)
    done = subprocess.run(
        [sys.executable, "-m", "clambake_tui.cli", "bundle", "--force"],
        cwd=train_repo.root,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bundling on GitHub Actions (workflow dispatched): run ")
    run_id = int(done.stdout.split("run ")[1].split()[0])
    assert train_repo.emulator.wait_for_run(run_id, timeout=60)["conclusion"] == "success"
    (pull,) = train_repo.pulls()
    assert pull["title"] == "[BUNDLE] 2 issues - 14:27 train"


def test_two_dispatches_at_once_bundle_once_thanks_to_the_concurrency_group(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_two(train_repo, agent_branch_pusher)
    forced = {"force_bundle": "true", "dry_run": "false"}
    first = train_repo.emulator.dispatch("clambake-bundling.yml", inputs=forced)
    second = train_repo.emulator.dispatch("clambake-bundling.yml", inputs=forced)
    runs = [train_repo.emulator.wait_for_run(r, timeout=90) for r in (first, second)]
    # The later run waits for the earlier one (or replaces it while it is still pending).
    conclusions = [r["conclusion"] for r in runs]
    assert conclusions in (["success", "success"], ["cancelled", "success"])
    (pull,) = train_repo.pulls()
    assert pull["title"].startswith("[BUNDLE] 2 issues")
    if conclusions[0] == "success":
        assert "nothing to bundle" in job_log(train_repo, second)
