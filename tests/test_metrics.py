"""Metrics: every number is computed from recorded events, and read back exactly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clambake_tui.metrics import (
    FAILURE_MODES,
    SCHEMA_VERSION,
    Metrics,
    collect_metrics,
    compute_metrics,
    count_active_agents,
    read_events,
    record,
)
from clambake_tui.state import Paths

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "repo")


def recorded(paths: Paths, *events: tuple[str, dict[str, Any]]) -> Metrics:
    """Record events through the real recorder, read the file back, compute over all time."""
    for name, fields in events:
        record(paths.metrics, name, **fields)
    return collect_metrics(paths, hours=None)


def finished(agent: str, issue: int, state: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    base: dict[str, Any] = {
        "agent_id": agent,
        "issue_number": issue,
        "process_id": f"{agent}-p",
        "state": state,
        "failure_mode": None,
        "exit_code": 0,
        "restarts": 0,
    }
    return ("agent.finished", base | fields)


# ---------------------------------------------------------------- the recorder


def test_record_appends_one_json_line_per_event_with_ts(paths: Paths) -> None:
    record(paths.metrics, "agent.spawned", agent_id="agent001", issue_number=1, process_id="p")
    record(paths.metrics, "agent.spawned", agent_id="agent002", issue_number=2, process_id="q")
    lines = paths.metrics.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["event"] == "agent.spawned" and first["agent_id"] == "agent001"
    assert datetime.fromisoformat(first["ts"]).tzinfo is not None


def test_record_follows_the_environment_when_no_path_is_given(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_METRICS_FILE", str(paths.metrics))
    record(None, "bundle.run", path="local", ok=True, duration_s=1.0)
    assert [e["event"] for e in read_events(paths.metrics)] == ["bundle.run"]


def test_record_never_raises_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    record(blocker / "metrics.jsonl", "agent.spawned")  # parent is a file: OSError swallowed


def test_damaged_lines_are_skipped_not_fatal(paths: Paths) -> None:
    record(paths.metrics, "agent.restarted", agent_id="agent001", restarts=1)
    with paths.metrics.open("a") as fh:
        fh.write('{"event": "agent.restarted", "ts": "2026-11-26T1\n[1, 2]\nnot json\n')
    record(paths.metrics, "agent.restarted", agent_id="agent001", restarts=2)
    assert collect_metrics(paths, hours=None).agents.restarts == 2


def test_reading_since_a_time_skips_older_lines_and_keeps_the_rest(paths: Paths) -> None:
    record(paths.metrics, "agent.spawned", agent_id="agent000")
    written = paths.metrics.read_text()
    # The recorder's own line shape, which lets old lines be skipped unparsed.
    assert re.match(r'^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00","event":', written)
    paths.metrics.write_text(
        '{"ts":"2026-11-26T10:59:59.999+00:00","event":"agent.spawned","agent_id":"agent001"}\n'
        # Another writer's shapes are parsed, never skipped on their looks.
        '{"event":"agent.spawned","ts":"2026-11-26T10:00:00","agent_id":"agent002"}\n'
        '{"ts":"2026-11-26T10:00:00Z","event":"agent.spawned","agent_id":"agent003"}\n'
        '{"ts":"2026-11-26T11:00:00.000+00:00","event":"agent.spawned","agent_id":"agent004"}\n'
    )
    since = T0 - timedelta(hours=1)
    kept = [e["agent_id"] for e in read_events(paths.metrics, since=since)]
    assert kept == ["agent002", "agent003", "agent004"]
    assert len(read_events(paths.metrics)) == 4
    assert collect_metrics(paths, now=T0, hours=1).agents.spawned == 1


def test_concurrent_writers_never_interleave_within_a_line(paths: Paths) -> None:
    code = (
        "import sys; from pathlib import Path; from clambake_tui.metrics import record\n"
        "for i in range(200): record(Path(sys.argv[1]), 'github.request', method='GET',"
        " route='/x' * 50, status=200, cached=False, remaining=i)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(paths.metrics)]) for _ in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = paths.metrics.read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["event"] == "github.request" for line in lines)


# ---------------------------------------------------------------- agents


def test_spawned_and_spawn_failed_give_the_spawn_success_rate(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "agent.spawned",
            {"agent_id": "agent001", "issue_number": 1, "process_id": "a", "spawn_ms": 40},
        ),
        (
            "agent.spawned",
            {"agent_id": "agent002", "issue_number": 2, "process_id": "b", "spawn_ms": 50},
        ),
        (
            "agent.spawned",
            {"agent_id": "agent003", "issue_number": 3, "process_id": "c", "spawn_ms": 60},
        ),
        ("agent.spawn_failed", {"agent_id": "agent004", "issue_number": 4, "reason": "no slot"}),
    )
    assert (m.agents.spawned, m.agents.spawn_failed) == (3, 1)
    assert m.agents.spawn_success_rate == 0.75


def test_completed_failed_terminated_counts_and_completion_rate(paths: Paths) -> None:
    m = recorded(
        paths,
        finished("agent001", 1, "completed"),
        finished("agent002", 2, "completed"),
        finished("agent003", 3, "failed", failure_mode="crash", exit_code=1),
        finished("agent004", 4, "terminated", failure_mode="killed", exit_code=-15),
    )
    assert (m.agents.completed, m.agents.failed, m.agents.terminated) == (2, 1, 1)
    assert m.agents.completion_rate == 0.5


def test_no_finished_agent_means_no_rate_rather_than_zero(paths: Paths) -> None:
    m = recorded(paths)
    assert m.agents.completion_rate is None
    assert m.agents.spawn_success_rate is None
    assert m.agents.duration.avg is None and m.agents.duration.p90 is None


def test_average_and_p90_duration_of_finished_runs(paths: Paths) -> None:
    runs = [
        finished(f"agent{i:03d}", i, "completed", duration_s=float(i * 10)) for i in range(1, 11)
    ]
    m = recorded(paths, *runs)
    assert m.agents.duration.count == 10
    assert m.agents.duration.avg == 55.0
    assert m.agents.duration.p90 == 90.0  # nearest rank: the 9th of 10


def test_failure_modes_are_grouped_and_the_known_ones_always_listed(paths: Paths) -> None:
    m = recorded(
        paths,
        finished("agent001", 1, "failed", failure_mode="timeout"),
        finished("agent002", 2, "failed", failure_mode="timeout"),
        finished("agent003", 3, "failed", failure_mode="crash"),
        finished("agent004", 4, "failed", failure_mode="auth_error"),
        finished("agent005", 5, "failed", failure_mode="rate_limited"),
        finished("agent006", 6, "terminated", failure_mode="killed"),
        finished("agent007", 7, "failed", failure_mode="error"),
        finished("agent009", 9, "failed", failure_mode="disk_full"),
        finished("agent008", 8, "completed"),
    )
    assert dict(m.agents.failure_modes) == {
        "timeout": 2,
        "crash": 1,
        "auth_error": 1,
        "rate_limited": 1,
        "killed": 1,
        "error": 1,
        "disk_full": 1,
    }
    assert tuple(recorded(Paths(paths.root / "empty")).agents.failure_modes) == FAILURE_MODES


def test_restarts_count_restart_events(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "agent.restarted",
            {"agent_id": "agent001", "issue_number": 1, "process_id": "b", "restarts": 1},
        ),
        (
            "agent.restarted",
            {"agent_id": "agent001", "issue_number": 1, "process_id": "c", "restarts": 2},
        ),
    )
    assert m.agents.restarts == 2


def test_resource_peaks_are_the_maximum_per_agent_across_runs(paths: Paths) -> None:
    m = recorded(
        paths,
        finished("agent002", 7, "failed", cpu_peak=80.5, rss_peak=100, open_files_peak=9),
        finished("agent002", 7, "completed", cpu_peak=20.0, rss_peak=300, open_files_peak=4),
        finished("agent001", 3, "completed", cpu_peak=5.0, rss_peak=None, open_files_peak=2),
    )
    peaks = {p.agent_id: p for p in m.agents.peaks}
    assert [p.agent_id for p in m.agents.peaks] == ["agent001", "agent002"]
    assert (peaks["agent002"].cpu_percent, peaks["agent002"].rss_bytes) == (80.5, 300)
    assert peaks["agent002"].open_files == 9
    assert peaks["agent001"].rss_bytes is None  # never seen: not invented


def test_active_count_comes_from_the_registry(paths: Paths) -> None:
    paths.state.mkdir(parents=True)
    paths.registry.write_text(
        json.dumps(
            {
                "version": 1,
                "agents": [
                    {"agent_id": "agent001", "status": {"state": "working"}},
                    {"agent_id": "agent002", "status": {"state": "starting"}},
                    {"agent_id": "agent003", "status": {"state": "completed"}},
                ],
            }
        )
    )
    assert collect_metrics(paths).agents.active == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, 0),
        ("{not json", None),
        ('"a string"', None),
        ('{"agent001": {"state": "working"}, "agent002": {"state": "failed"}}', 1),
        ('[{"status": "working"}, {"status": "terminated"}, 7]', 1),
    ],
)
def test_registry_is_read_defensively(
    tmp_path: Path, content: str | None, expected: int | None
) -> None:
    registry = tmp_path / "registry.json"
    if content is not None:
        registry.write_text(content)
    assert count_active_agents(registry) == expected


# ---------------------------------------------------------------- GitHub and Actions


def test_workflow_trigger_success_rate_and_latency(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "actions.dispatch",
            {"ok": True, "workflow": "b.yml", "latency_s": 2.0, "run_id": 1, "error": None},
        ),
        (
            "actions.dispatch",
            {"ok": True, "workflow": "b.yml", "latency_s": 4.0, "run_id": 2, "error": None},
        ),
        (
            "actions.dispatch",
            {"ok": False, "workflow": "b.yml", "latency_s": None, "run_id": None, "error": "422"},
        ),
        (
            "actions.dispatch",
            {"ok": True, "workflow": "b.yml", "latency_s": None, "run_id": None, "error": None},
        ),
    )
    g = m.github
    assert (g.dispatches, g.dispatches_ok, g.trigger_success_rate) == (4, 3, 0.75)
    assert (g.trigger_latency.count, g.trigger_latency.avg, g.trigger_latency.p90) == (2, 3.0, 4.0)


def test_bundling_runs_duration_success_rate_and_local_fallbacks(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "bundle.run",
            {"path": "actions", "ok": True, "duration_s": 30.0, "issues": [1, 2], "prs": [9]},
        ),
        (
            "bundle.run",
            {
                "path": "actions",
                "ok": False,
                "duration_s": 10.0,
                "issues": [3],
                "prs": [],
                "reason": "conflict",
            },
        ),
        (
            "bundle.run",
            {
                "path": "local",
                "ok": True,
                "duration_s": 5.0,
                "issues": [3],
                "prs": [10],
                "reason": "actions unreachable",
            },
        ),
    )
    g = m.github
    assert (g.bundle_runs, g.bundle_runs_ok) == (3, 2)
    assert g.bundle_success_rate == pytest.approx(2 / 3)
    assert g.bundle_duration.avg == 15.0 and g.bundle_duration.p90 == 30.0
    assert (g.actions_runs, g.local_fallbacks) == (2, 1)


def test_an_actions_run_recorded_twice_counts_once_with_its_last_record(paths: Paths) -> None:
    m = recorded(
        paths,
        ("bundle.run", {"path": "actions", "ok": False, "duration_s": 5.0, "run_id": 77}),
        ("bundle.run", {"path": "actions", "ok": True, "duration_s": 42.0, "run_id": 77}),
        ("bundle.run", {"path": "local", "ok": True, "duration_s": 3.0}),
        ("bundle.run", {"path": "local", "ok": True, "duration_s": 3.0}),
    )
    g = m.github
    assert (g.bundle_runs, g.bundle_runs_ok, g.actions_runs, g.local_fallbacks) == (3, 3, 1, 2)
    assert g.bundle_duration.p90 == 42.0


def test_api_requests_versus_304s_and_last_rate_limit_remaining(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "github.request",
            {
                "method": "GET",
                "route": "/issues",
                "status": 200,
                "cached": False,
                "remaining": 4999,
            },
        ),
        (
            "github.request",
            {"method": "GET", "route": "/issues", "status": 304, "cached": True, "remaining": 4999},
        ),
        (
            "github.request",
            {
                "method": "POST",
                "route": "/pulls",
                "status": 201,
                "cached": False,
                "remaining": 4990,
            },
        ),
        (
            "github.request",
            {"method": "GET", "route": "/x", "status": 500, "cached": False, "remaining": None},
        ),
    )
    g = m.github
    assert (g.api_requests, g.api_not_modified) == (4, 1)
    assert g.rate_limit_remaining == 4990  # the last one seen; a request without headers keeps it


# ---------------------------------------------------------------- end to end


def test_exit_to_push_to_bundle_pr_latency_joined_by_issue(paths: Paths) -> None:
    m = recorded(
        paths,
        (
            "landing.pushed",
            {"agent_id": "agent001", "issue_number": 12, "exited_at": at(0), "pushed_at": at(5)},
        ),
        (
            "landing.pushed",
            {"agent_id": "agent002", "issue_number": 15, "exited_at": at(10), "pushed_at": at(13)},
        ),
        (
            "landing.pushed",
            {"agent_id": "agent003", "issue_number": 31, "exited_at": at(20), "pushed_at": at(21)},
        ),
        ("bundle.pr_created", {"pr_number": 40, "issues": [12, 15], "created_at": at(65)}),
        # A later bundle of issue 12 does not move its first PR.
        ("bundle.pr_created", {"pr_number": 41, "issues": [12], "created_at": at(900)}),
    )
    e = m.end_to_end
    assert (e.pushed, e.in_pr) == (3, 2)  # issue 31 is pushed but not bundled yet
    assert e.exit_to_push.avg == pytest.approx(3.0)
    assert sorted([e.push_to_pr.avg, e.push_to_pr.p90]) == [pytest.approx(56.0), 60.0]
    assert e.exit_to_pr.avg == pytest.approx(60.0) and e.exit_to_pr.p90 == 65.0


def test_a_pr_opened_before_the_push_is_not_counted_as_its_bundle(paths: Paths) -> None:
    m = recorded(
        paths,
        ("bundle.pr_created", {"pr_number": 40, "issues": [12], "created_at": at(0)}),
        (
            "landing.pushed",
            {"agent_id": "agent001", "issue_number": 12, "exited_at": at(10), "pushed_at": at(20)},
        ),
    )
    assert m.end_to_end.in_pr == 0 and m.end_to_end.push_to_pr.count == 0


# ---------------------------------------------------------------- windows, JSON and the command


def test_hours_window_keeps_only_events_with_ts_inside_it() -> None:
    now = T0
    events = [
        {"ts": at(-3 * 3600), "event": "agent.spawned"},
        {"ts": at(-30 * 60), "event": "agent.spawned"},
        {"ts": at(-60), "event": "agent.spawn_failed"},
        {"ts": "garbage", "event": "agent.spawned"},
        {"event": "agent.spawned"},
    ]
    last_hour = compute_metrics(events, now, 1)
    assert (last_hour.agents.spawned, last_hour.agents.spawn_failed, last_hour.events) == (1, 1, 2)
    assert compute_metrics(events, now, 4).agents.spawned == 2
    assert compute_metrics(events, now, None).agents.spawned == 4


def test_json_form_is_stable_and_carries_the_schema_version() -> None:
    data = compute_metrics([], T0, 24).to_json()
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert list(data) == [
        "schema_version",
        "generated_at",
        "window_hours",
        "since",
        "events",
        "agents",
        "github",
        "end_to_end",
    ]
    assert data["generated_at"] == "2026-11-26T12:00:00+00:00"
    assert data["since"] == "2026-11-25T12:00:00+00:00"
    json.dumps(data)  # plain JSON all the way down


def run_clambake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAMBAKE_")}
    env["CLAMBAKE_ROOT"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "clambake_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_clambake_metrics_json_reads_the_recorded_file(paths: Paths) -> None:
    record(paths.metrics, "agent.spawned", agent_id="agent001", issue_number=1, process_id="a")
    record(paths.metrics, "bundle.run", path="local", ok=True, duration_s=2.5, issues=[1], prs=[3])
    done = run_clambake(paths.root, "metrics", "--json", "--hours", "1")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["window_hours"] == 1.0
    assert data["agents"]["spawned"] == 1
    assert data["github"]["local_fallbacks"] == 1
    assert data["github"]["bundle_duration"] == {"count": 1, "avg_s": 2.5, "p90_s": 2.5}


def test_clambake_metrics_prints_a_readable_summary(paths: Paths) -> None:
    record(
        paths.metrics,
        "agent.finished",
        agent_id="agent007",
        issue_number=9,
        process_id="a",
        state="failed",
        failure_mode="timeout",
        duration_s=1800.0,
        cpu_peak=12.0,
        rss_peak=50 * 1024 * 1024,
        open_files_peak=8,
    )
    done = run_clambake(paths.root, "metrics")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Agents" in out and "GitHub and Actions" in out and "End to end" in out
    assert "timeout 1" in out
    assert "agent007" in out and "50 MiB" in out
    assert "avg 30.0m" in out


def test_clambake_metrics_with_no_state_folder_prints_zeros_not_an_error(tmp_path: Path) -> None:
    done = run_clambake(tmp_path, "metrics", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["events"] == 0 and data["agents"]["active"] == 0
    assert not (tmp_path / ".clambake").exists()  # reading metrics creates nothing


@pytest.mark.parametrize("bad", ["x", "-2", "nan"])
def test_clambake_metrics_refuses_a_bad_hours_value(tmp_path: Path, bad: str) -> None:
    done = run_clambake(tmp_path, "metrics", "--hours", bad)
    assert done.returncode == 2
    assert "--hours" in done.stderr and "Traceback" not in done.stderr
