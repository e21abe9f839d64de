"""`clambake land`: a finished run whose landing never happened, landed by hand through the real
command line, a real bare origin and the GitHub emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.bundling import TrainRepo
from tests.fixtures.common import git

CLAMBAKE = Path(sys.executable).parent / "clambake"


def clambake(
    repo: TrainRepo, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLAMBAKE), *args],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


def without_token(repo: TrainRepo) -> dict[str, str]:
    """This environment with no way to find a GitHub token: the watcher's landing fails."""
    empty = repo.root.parent / "gh-config-empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    return {**env, "GH_CONFIG_DIR": str(empty)}


def finish_unlanded(repo: TrainRepo, agent: str, number: int, title: str, *, mode: str = "") -> str:
    """Run a stand-in agent on the issue to its end with no token about, so its automatic landing
    fails; returns its process id."""
    body = f"standin-file: issue-{number}.txt\nstandin-content: fixed {number}\n"
    if mode:
        body += f"standin-mode: {mode}\n"
    spawned = clambake(
        repo,
        *("spawn", "--agent", agent, "--issue", str(number), "--title", title, "--body", body),
        env=without_token(repo),
    )
    assert spawned.returncode == 0, spawned.stderr
    if mode != "hang":
        followed = clambake(repo, "monitor", "--agent", agent)
        assert followed.stdout.rstrip().endswith(f"{agent} completed (exit 0)"), followed.stdout
    status = json.loads(clambake(repo, "status", "--json").stdout)
    (entry,) = [e for e in status if e["agent_id"] == agent]
    return str(entry["process_id"])


def comments(repo: TrainRepo, number: int) -> list[str]:
    store = repo.emulator.store
    return [c["body"] for c in store.issue(store.default_repo(), number)["comments"]]


def remote_head(repo: TrainRepo, branch: str) -> str:
    return git(repo.root, "ls-remote", "origin", f"refs/heads/{branch}")


def test_a_run_whose_landing_failed_is_landed_once_and_the_second_time_is_a_no_op(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    number = repo.add_issue(
        "Fix the login page", file="login.txt", content="x", labels=("route:ready", "agent001")
    )
    finish_unlanded(repo, "agent001", number, "Fix the login page")
    branch = f"agent001/{number}-fix-the-login-page"
    assert remote_head(repo, branch) == ""  # the watcher could not land it
    assert sorted(repo.emulator.issue_labels(number)) == ["agent001", "route:ready"]
    # The rollback lever, set after the spawn, reaches the landing: the train is bundled locally.
    assert clambake(repo, "config", "set", "github_actions.enabled", "false").returncode == 0

    first = clambake(repo, "land", "agent001", "--force-bundle")

    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"#{number}: pushed {branch} (1 commits) and routed it to route:review"
    assert lines[1] == "bundled locally (github_actions.enabled is false)"
    assert remote_head(repo, branch) != ""
    assert repo.emulator.issue_labels(number) == ["route:review"]
    (comment,) = comments(repo, number)
    assert f"`{branch}`" in comment
    (pr,) = repo.pulls()
    assert pr["pull"]["head_ref"] == branch
    assert repo.emulator.runs() == []

    second = clambake(repo, "land", "agent001", "--force-bundle")

    assert second.returncode == 0, second.stderr
    sha = git(repo.root, "rev-parse", f"refs/heads/{branch}")
    assert second.stdout.splitlines() == [
        f"#{number}: {branch} already landed at {sha[:12]}; nothing to do"
    ]
    assert len(comments(repo, number)) == 1
    assert len(repo.pulls()) == 1
    token = os.environ["GH_TOKEN"]
    for done in (first, second):
        assert token not in done.stdout + done.stderr


def test_all_lands_every_unrouted_success_and_json_says_what_happened(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    login = repo.add_issue(
        "Fix login", file="a.txt", content="x", labels=("route:ready", "agent001")
    )
    docs = repo.add_issue(
        "Write docs", file="b.txt", content="y", labels=("route:ready", "agent002")
    )
    first_id = finish_unlanded(repo, "agent001", login, "Fix login")
    second_id = finish_unlanded(repo, "agent002", docs, "Write docs")

    done = clambake(repo, "land", "--all", "--no-bundle", "--json")

    assert done.returncode == 0, done.stderr
    landed = {entry["process_id"]: entry for entry in json.loads(done.stdout)}
    assert set(landed) == {first_id, second_id}
    for entry, number in ((landed[first_id], login), (landed[second_id], docs)):
        assert entry["status"] == "landed"
        assert entry["issue_number"] == number
        assert entry["commits_ahead"] == 1
        assert remote_head(repo, entry["branch"]).startswith(entry["sha"])
        assert entry["bundle"] is None and entry["error"] is None
        assert entry["lines"][0].startswith(f"#{number}: pushed {entry['branch']}")
        assert repo.emulator.issue_labels(number) == ["route:review"]
    assert repo.pulls() == [] and repo.emulator.runs() == []

    again = clambake(repo, "land", "--all", "--json")

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == []
    assert again.stderr.strip() == "clambake: 2 runs left alone: issue routed to route:review"
    assert [len(comments(repo, n)) for n in (login, docs)] == [1, 1]
    # The same run by its process id: landed already, in JSON.
    by_id = clambake(repo, "land", first_id, "--json")
    assert by_id.returncode == 0, by_id.stderr
    ((entry),) = json.loads(by_id.stdout)
    assert entry["status"] == "already-landed"


def test_an_unknown_agent_or_run_is_one_line_and_exit_2(train_repo: TrainRepo) -> None:
    repo = train_repo
    before = clambake(repo, "land", "agent042")  # no agent has run here yet
    assert before.returncode == 2
    assert before.stderr.splitlines() == [
        "clambake: error: unknown agent or run 'agent042': no agent has run here; "
        "`clambake status` lists them"
    ]
    number = repo.add_issue("Fix login", file="a.txt", content="x")
    finish_unlanded(repo, "agent001", number, "Fix login")
    for target, message in (
        ("agent042", "unknown agent agent042: it has no run here; `clambake status` lists them"),
        (
            "agent001-9-00000000",
            "unknown agent or run 'agent001-9-00000000': give an agent (agent001) or a "
            "process id from `clambake status --all --json`",
        ),
    ):
        done = clambake(repo, "land", target)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [f"clambake: error: {message}"]
        assert done.stdout == ""
    assert remote_head(repo, f"agent001/{number}-fix-login") == ""


def test_an_active_run_and_a_run_that_did_not_succeed_are_refused(train_repo: TrainRepo) -> None:
    repo = train_repo
    number = repo.add_issue("Hang", file="a.txt", content="x", labels=("route:ready", "agent003"))
    process_id = finish_unlanded(repo, "agent003", number, "Hang", mode="hang")

    try:
        active = clambake(repo, "land", "agent003")
    finally:
        assert clambake(repo, "terminate", "--agent", "agent003").returncode == 0

    assert active.returncode == 1
    (line,) = active.stdout.splitlines()
    assert line.startswith(f"#{number}: {process_id} is still running (")  # starting or working
    assert line.endswith("): it lands by itself when it ends; not landed")
    assert "Traceback" not in active.stderr

    stopped = clambake(repo, "land", process_id, "--json")

    assert stopped.returncode == 1
    ((entry),) = json.loads(stopped.stdout)
    assert entry["status"] == "refused"
    assert entry["error"] == "did not succeed (terminated): there is nothing to land"
    assert remote_head(repo, f"agent003/{number}-hang") == ""
    assert sorted(repo.emulator.issue_labels(number)) == ["agent003", "route:ready"]
    assert comments(repo, number) == []


def test_a_landing_that_fails_says_why_in_one_line_and_exits_1(train_repo: TrainRepo) -> None:
    repo = train_repo
    # The issue does not exist on GitHub (the emulator): the push works, routing it cannot.
    finish_unlanded(repo, "agent001", 77, "Ghost issue")

    done = clambake(repo, "land", "agent001", "--no-bundle")

    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    assert line.startswith("#77: landing agent001/77-ghost-issue failed: ")
    assert "Traceback" not in done.stderr


def test_without_a_token_it_is_an_auth_error_exit_2(train_repo: TrainRepo) -> None:
    repo = train_repo
    number = repo.add_issue("Fix login", file="a.txt", content="x")
    finish_unlanded(repo, "agent001", number, "Fix login")

    done = clambake(repo, "land", "agent001", env=without_token(repo))

    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("clambake: error: ")
    assert "GH_TOKEN" in line
    assert done.stdout == ""
