"""Metric events: one JSON object per line in .clambake/metrics.jsonl, recorded where things happen.

Numbers are computed from these records later (`clambake metrics`); nothing is invented.
Event names in use (fields beyond `ts` and `event`):

- agent.spawned        agent_id, issue_number, process_id, spawn_ms
- agent.spawn_failed   agent_id, issue_number, reason
- agent.restarted      agent_id, issue_number, process_id, restarts
- agent.finished       agent_id, issue_number, process_id, state, failure_mode, duration_s,
                       exit_code, restarts, cpu_peak, rss_peak, open_files_peak, exited_at
- github.request       method, route, status, cached, remaining
- actions.dispatch     ok, workflow, latency_s (trigger to run visible), run_id, error
- bundle.run           path ("actions" | "local"), ok, duration_s, issues, prs, reason,
                       run_id (optional: the Actions run; its records count once)
- landing.pushed       agent_id, issue_number, exited_at, pushed_at
- bundle.pr_created    pr_number, issues, created_at

`failure_mode` of agent.finished is one of FAILURE_MODES (None when the run succeeded):
timeout, crash (ended without a result), auth_error, rate_limited (by the model provider),
killed (terminated on request or by a signal), error (any other failure). Timestamps
(`exited_at`, `pushed_at`, `created_at`) are ISO 8601 with a time zone.

`compute_metrics(events, now, hours)` turns the events into a `Metrics` value (what `clambake
metrics` prints and the dashboard shows); `collect_metrics(paths)` also reads the registry.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clambake_tui.bundling.naming import OPENED_BY, closed_issue_numbers
from clambake_tui.logs import get_logger

if TYPE_CHECKING:
    from clambake_tui.model import PullRequest, WorkflowRun
    from clambake_tui.state import Paths

__all__ = [
    "record",
    "read_events",
    "METRICS_PATH_ENV",
    "SCHEMA_VERSION",
    "FAILURE_MODES",
    "DEFAULT_HOURS",
    "Summary",
    "AgentPeak",
    "AgentMetrics",
    "GitHubMetrics",
    "EndToEndMetrics",
    "Metrics",
    "compute_metrics",
    "count_active_agents",
    "collect_metrics",
    "record_actions_runs",
    "record_bundle_pulls",
]

METRICS_PATH_ENV = "CLAMBAKE_METRICS_FILE"
log = get_logger(__name__)


def record(metrics_file: Path | None, event: str, **fields: Any) -> None:
    """Append one event. Never raises: a metric that cannot be written must not stop the work."""
    target = metrics_file or (Path(p) if (p := os.environ.get(METRICS_PATH_ENV)) else None)
    if target is None:
        return
    # `ts` is when it happened: now, unless the caller records something seen after the fact.
    stamp = fields.pop("ts", None) or datetime.now(UTC).isoformat(timespec="milliseconds")
    entry = {"ts": stamp, "event": event, **fields}
    line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND with one write per line: concurrent writers never interleave within a line.
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("cannot record metric %s: %s", event, exc)


# What `record` writes at the start of every line, and the length of its `ts` value.
_TS_PREFIX = '{"ts":"'
_TS_LEN = len("2026-01-01T00:00:00.000+00:00")


def read_events(metrics_file: Path, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every well-formed event in the file, oldest first; damaged lines are skipped.

    With `since`, lines that `record` wrote before it are skipped without being parsed (a
    large file is mostly old news); any other line is parsed and kept for the caller to judge.
    """
    events: list[dict[str, Any]] = []
    try:
        text = metrics_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return events
    cutoff = since.astimezone(UTC).isoformat(timespec="milliseconds") if since else None
    start, end = len(_TS_PREFIX), len(_TS_PREFIX) + _TS_LEN
    for line in text.splitlines():
        if (
            cutoff is not None
            and line.startswith(_TS_PREFIX)
            and line[end : end + 1] == '"'
            and line[end - 6 : end] == "+00:00"
            and line[start:end] < cutoff
        ):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(entry)
    return events


# ---------------------------------------------------------------- computation

# Bumped only when a key of `Metrics.to_json()` is renamed or removed (adding keys keeps it).
SCHEMA_VERSION = 1
FAILURE_MODES = ("timeout", "crash", "auth_error", "rate_limited", "killed", "error")
DEFAULT_HOURS = 24.0
_ACTIVE_STATES = frozenset({"starting", "working", "running"})


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, mean and 90th percentile (nearest rank) of a set of durations, in seconds."""

    count: int
    avg: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None)
        rank = max(1, math.ceil(0.9 * len(ordered)))
        return cls(len(ordered), sum(ordered) / len(ordered), ordered[rank - 1])

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "avg_s": _round(self.avg), "p90_s": _round(self.p90)}


@dataclass(frozen=True, slots=True)
class AgentPeak:
    """The highest resource use seen for one agent id across its runs in the window."""

    agent_id: str
    issue_number: int | None
    cpu_percent: float | None
    rss_bytes: int | None
    open_files: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "issue_number": self.issue_number,
            "cpu_percent": _round(self.cpu_percent),
            "rss_bytes": self.rss_bytes,
            "open_files": self.open_files,
        }


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    active: int | None
    spawned: int
    spawn_failed: int
    completed: int
    failed: int
    terminated: int
    completion_rate: float | None
    spawn_success_rate: float | None
    duration: Summary
    failure_modes: Mapping[str, int]
    restarts: int
    peaks: tuple[AgentPeak, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "spawned": self.spawned,
            "spawn_failed": self.spawn_failed,
            "completed": self.completed,
            "failed": self.failed,
            "terminated": self.terminated,
            "completion_rate": _round(self.completion_rate),
            "spawn_success_rate": _round(self.spawn_success_rate),
            "duration": self.duration.to_json(),
            "failure_modes": dict(self.failure_modes),
            "restarts": self.restarts,
            "peaks": [peak.to_json() for peak in self.peaks],
        }


@dataclass(frozen=True, slots=True)
class GitHubMetrics:
    dispatches: int
    dispatches_ok: int
    trigger_success_rate: float | None
    trigger_latency: Summary
    bundle_runs: int
    bundle_runs_ok: int
    bundle_success_rate: float | None
    bundle_duration: Summary
    actions_runs: int
    local_fallbacks: int
    api_requests: int
    api_not_modified: int
    rate_limit_remaining: int | None
    rate_limit_seen_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "dispatches": self.dispatches,
            "dispatches_ok": self.dispatches_ok,
            "trigger_success_rate": _round(self.trigger_success_rate),
            "trigger_latency": self.trigger_latency.to_json(),
            "bundle_runs": self.bundle_runs,
            "bundle_runs_ok": self.bundle_runs_ok,
            "bundle_success_rate": _round(self.bundle_success_rate),
            "bundle_duration": self.bundle_duration.to_json(),
            "actions_runs": self.actions_runs,
            "local_fallbacks": self.local_fallbacks,
            "api_requests": self.api_requests,
            "api_not_modified": self.api_not_modified,
            "rate_limit_remaining": self.rate_limit_remaining,
            "rate_limit_seen_at": self.rate_limit_seen_at,
        }


@dataclass(frozen=True, slots=True)
class EndToEndMetrics:
    """Agent exit -> branch pushed -> bundle PR opened, joined by issue number."""

    pushed: int
    in_pr: int
    exit_to_push: Summary
    push_to_pr: Summary
    exit_to_pr: Summary

    def to_json(self) -> dict[str, Any]:
        return {
            "pushed": self.pushed,
            "in_pr": self.in_pr,
            "exit_to_push": self.exit_to_push.to_json(),
            "push_to_pr": self.push_to_pr.to_json(),
            "exit_to_pr": self.exit_to_pr.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Metrics:
    """Everything `clambake metrics` reports for one time window."""

    generated_at: datetime
    window_hours: float | None
    since: datetime | None
    events: int
    agents: AgentMetrics
    github: GitHubMetrics
    end_to_end: EndToEndMetrics

    def to_json(self) -> dict[str, Any]:
        """The documented, stable form (docs/metrics.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": _iso(self.generated_at),
            "window_hours": self.window_hours,
            "since": _iso(self.since) if self.since else None,
            "events": self.events,
            "agents": self.agents.to_json(),
            "github": self.github.to_json(),
            "end_to_end": self.end_to_end.to_json(),
        }


def compute_metrics(
    events: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    hours: float | None = DEFAULT_HOURS,
    *,
    active: int | None = None,
) -> Metrics:
    """Numbers from the events whose `ts` falls in the last `hours` (None: all of them).

    `active` is the registry's count of live agents (events alone cannot tell it); None when
    unknown. Events without a readable `ts` count only when no window is asked for.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=hours) if hours is not None else None
    window = [e for e in events if _in_window(e, since, now)]
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for event in window:
        by_name.setdefault(str(event.get("event")), []).append(event)
    return Metrics(
        generated_at=now,
        window_hours=hours,
        since=since,
        events=len(window),
        agents=_agent_metrics(by_name, active),
        github=_github_metrics(by_name),
        end_to_end=_end_to_end(by_name),
    )


def count_active_agents(registry: Path) -> int | None:
    """Agents the registry says are starting or working; None when it cannot be read.

    The file belongs to the supervisor; this reads it defensively (a list of records, or a
    mapping of them, at the top level or under "agents"/"processes").
    """
    try:
        data = json.loads(registry.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return None
    records = _registry_records(data)
    if records is None:
        return None
    return sum(1 for rec in records if _record_state(rec) in _ACTIVE_STATES)


def collect_metrics(
    paths: Paths, now: datetime | None = None, hours: float | None = DEFAULT_HOURS
) -> Metrics:
    """`compute_metrics` over .clambake/metrics.jsonl, with the active count from the registry."""
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=hours) if hours is not None else None
    events = read_events(paths.metrics, since)
    return compute_metrics(events, now, hours, active=count_active_agents(paths.registry))


@dataclass(frozen=True, slots=True)
class MetricsView:
    """What the dashboard's metrics screen shows: the numbers and the latest run durations."""

    metrics: Metrics
    durations: tuple[float, ...]


def load_metrics_view(
    paths: Paths, now: datetime | None = None, hours: float | None = DEFAULT_HOURS, last: int = 60
) -> MetricsView:
    """`collect_metrics` plus the durations of the last `last` finished agent runs, oldest first."""
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=hours) if hours is not None else None
    events = read_events(paths.metrics, since)
    durations = [
        value
        for event in events
        if event["event"] == "agent.finished"
        and (value := _number(event.get("duration_s"))) is not None
    ]
    metrics = compute_metrics(events, now, hours, active=count_active_agents(paths.registry))
    return MetricsView(metrics, tuple(durations[-last:]))


def record_actions_runs(metrics_file: Path, runs: Iterable[WorkflowRun]) -> int:
    """Record each completed bundling run on GitHub Actions that is not in the file yet.

    A train that leaves on Actions is bundled on the runner, whose own records are thrown away
    with the job; what GitHub says about the run (conclusion, start and end) is recorded here as
    a `bundle.run` with path "actions", its `run_id` and `ts` set to when it completed.
    Returns how many runs were recorded.
    """
    known = {
        e.get("run_id")
        for e in read_events(metrics_file)
        if e.get("event") == "bundle.run" and e.get("path") == "actions"
    }
    added = 0
    for run in sorted(runs, key=lambda r: r.updated_at):
        if not run.is_completed or run.id in known:
            continue
        record(
            metrics_file,
            "bundle.run",
            ts=_iso_ms(run.updated_at),
            path="actions",
            ok=run.conclusion == "success",
            duration_s=round(run.duration_seconds(), 3),
            issues=None,
            prs=None,
            reason=run.conclusion,
            run_id=run.id,
        )
        known.add(run.id)
        added += 1
    return added


def record_bundle_pulls(metrics_file: Path, pulls: Iterable[PullRequest]) -> int:
    """Record each bundler pull request on GitHub that is not in the file yet.

    A train on Actions opens its pull requests on the runner, whose records are thrown away with
    the job. A pull request whose body ends with the bundler's signature is recorded here as a
    `bundle.pr_created` (its number, the issues it closes, `created_at` and `ts` from GitHub),
    which is what the agent exit -> bundle PR numbers join on. Returns how many were recorded.
    """
    known = {
        e.get("pr_number")
        for e in read_events(metrics_file)
        if e.get("event") == "bundle.pr_created"
    }
    added = 0
    ours = [p for p in pulls if p.created_at is not None and OPENED_BY in p.body]
    for pull in sorted(ours, key=lambda p: (p.created_at, p.number)):
        issues = sorted(closed_issue_numbers(pull.body))
        if pull.number in known or not issues:
            continue
        assert pull.created_at is not None
        record(
            metrics_file,
            "bundle.pr_created",
            ts=_iso_ms(pull.created_at),
            pr_number=pull.number,
            issues=issues,
            created_at=pull.created_at.astimezone(UTC).isoformat(),
        )
        known.add(pull.number)
        added += 1
    return added


# ---------------------------------------------------------------- the parts


def _agent_metrics(
    by_name: Mapping[str, list[Mapping[str, Any]]], active: int | None
) -> AgentMetrics:
    spawned = len(by_name.get("agent.spawned", []))
    spawn_failed = len(by_name.get("agent.spawn_failed", []))
    finished = by_name.get("agent.finished", [])
    states = [str(e.get("state") or "").lower() for e in finished]
    completed = states.count("completed")
    failed = states.count("failed")
    terminated = states.count("terminated")
    modes: dict[str, int] = dict.fromkeys(FAILURE_MODES, 0)
    for event, state in zip(finished, states, strict=True):
        # Only what the supervisor recorded: a run without a failure_mode is not guessed at.
        mode = event.get("failure_mode")
        if mode and state != "completed":
            modes[str(mode)] = modes.get(str(mode), 0) + 1
    return AgentMetrics(
        active=active,
        spawned=spawned,
        spawn_failed=spawn_failed,
        completed=completed,
        failed=failed,
        terminated=terminated,
        completion_rate=_rate(completed, completed + failed + terminated),
        spawn_success_rate=_rate(spawned, spawned + spawn_failed),
        duration=Summary.of(v for e in finished if (v := _number(e.get("duration_s"))) is not None),
        failure_modes=modes,
        restarts=len(by_name.get("agent.restarted", [])),
        peaks=_peaks(finished),
    )


def _peaks(finished: Sequence[Mapping[str, Any]]) -> tuple[AgentPeak, ...]:
    peaks: dict[str, AgentPeak] = {}
    for event in finished:
        agent_id = event.get("agent_id")
        if not agent_id:
            continue
        old = peaks.get(str(agent_id))
        cpu = _number(event.get("cpu_peak"))
        rss = _integer(event.get("rss_peak"))
        files = _integer(event.get("open_files_peak"))
        issue = _integer(event.get("issue_number"))
        if old is not None:
            cpu = _max(old.cpu_percent, cpu)
            rss = _max(old.rss_bytes, rss)
            files = _max(old.open_files, files)
            issue = issue if issue is not None else old.issue_number
        peaks[str(agent_id)] = AgentPeak(str(agent_id), issue, cpu, rss, files)
    return tuple(peaks[key] for key in sorted(peaks))


def _github_metrics(by_name: Mapping[str, list[Mapping[str, Any]]]) -> GitHubMetrics:
    dispatches = by_name.get("actions.dispatch", [])
    dispatched_ok = [e for e in dispatches if e.get("ok") is True]
    runs = _unique_runs(by_name.get("bundle.run", []))
    runs_ok = sum(1 for e in runs if e.get("ok") is True)
    requests = by_name.get("github.request", [])
    not_modified = sum(1 for e in requests if e.get("cached") is True or e.get("status") == 304)
    remaining: int | None = None
    seen_at: str | None = None
    for event in requests:
        value = _integer(event.get("remaining"))
        if value is not None:
            remaining, seen_at = value, str(event.get("ts"))
    return GitHubMetrics(
        dispatches=len(dispatches),
        dispatches_ok=len(dispatched_ok),
        trigger_success_rate=_rate(len(dispatched_ok), len(dispatches)),
        trigger_latency=Summary.of(
            v for e in dispatched_ok if (v := _number(e.get("latency_s"))) is not None
        ),
        bundle_runs=len(runs),
        bundle_runs_ok=runs_ok,
        bundle_success_rate=_rate(runs_ok, len(runs)),
        bundle_duration=Summary.of(
            v for e in runs if (v := _number(e.get("duration_s"))) is not None
        ),
        actions_runs=sum(1 for e in runs if e.get("path") == "actions"),
        local_fallbacks=sum(1 for e in runs if e.get("path") == "local"),
        api_requests=len(requests),
        api_not_modified=not_modified,
        rate_limit_remaining=remaining,
        rate_limit_seen_at=seen_at,
    )


def _unique_runs(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Bundle runs, each Actions run counted once however many watchers recorded it (its last
    record wins: it is the one that saw it finish)."""
    last: dict[Any, int] = {}
    for index, event in enumerate(runs):
        run_id = event.get("run_id")
        if run_id is not None:
            last[(event.get("path"), run_id)] = index
    return [
        event
        for index, event in enumerate(runs)
        if event.get("run_id") is None or last[(event.get("path"), event.get("run_id"))] == index
    ]


def _end_to_end(by_name: Mapping[str, list[Mapping[str, Any]]]) -> EndToEndMetrics:
    # The first bundle PR opened for each issue (an issue re-bundled later keeps its first PR).
    first_pr: dict[int, datetime] = {}
    for event in by_name.get("bundle.pr_created", []):
        created = _time(event.get("created_at")) or _time(event.get("ts"))
        issues = event.get("issues")
        if created is None or not isinstance(issues, list):
            continue
        for raw in issues:
            issue = _integer(raw)
            if issue is not None and (issue not in first_pr or created < first_pr[issue]):
                first_pr[issue] = created
    exit_to_push: list[float] = []
    push_to_pr: list[float] = []
    exit_to_pr: list[float] = []
    pushes = by_name.get("landing.pushed", [])
    in_pr = 0
    for event in pushes:
        exited = _time(event.get("exited_at"))
        pushed = _time(event.get("pushed_at")) or _time(event.get("ts"))
        issue = _integer(event.get("issue_number"))
        if exited is not None and pushed is not None:
            exit_to_push.append(_seconds(exited, pushed))
        created = first_pr.get(issue) if issue is not None else None
        if created is None or pushed is None or created < pushed:
            continue
        in_pr += 1
        push_to_pr.append(_seconds(pushed, created))
        if exited is not None:
            exit_to_pr.append(_seconds(exited, created))
    return EndToEndMetrics(
        pushed=len(pushes),
        in_pr=in_pr,
        exit_to_push=Summary.of(exit_to_push),
        push_to_pr=Summary.of(push_to_pr),
        exit_to_pr=Summary.of(exit_to_pr),
    )


# ---------------------------------------------------------------- reading values defensively


def _registry_records(data: Any) -> list[Any] | None:
    if isinstance(data, Mapping):
        for key in ("agents", "processes", "records"):
            if key in data:
                return _registry_records(data[key])
        values = list(data.values())
        return values if all(isinstance(v, Mapping) for v in values) else None
    if isinstance(data, list):
        return data
    return None


def _record_state(rec: Any) -> str | None:
    if not isinstance(rec, Mapping):
        return None
    status = rec.get("status", rec.get("state"))
    if isinstance(status, Mapping):
        status = status.get("state")
    return str(status).lower() if status is not None else None


def _in_window(event: Mapping[str, Any], since: datetime | None, now: datetime) -> bool:
    if since is None:
        return True
    ts = _time(event.get("ts"))
    return ts is not None and since <= ts <= now


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A time without a zone is taken as UTC (every writer records UTC).
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _max(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _iso_ms(value: datetime) -> str:
    """The recorder's own `ts` form (UTC, milliseconds)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")
