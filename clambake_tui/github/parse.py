"""Turning GitHub's JSON into the domain dataclasses of `clambake_tui.model`.

Parsing is lenient about what it does not use and strict about what it does: a missing `id` or
`number` is GitHub (or the emulator) breaking its contract, reported as one clear line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clambake_tui.errors import GitHubError
from clambake_tui.model import Issue, Job, PullRequest, RateLimit, Step, WorkflowRun

__all__ = [
    "parse_time",
    "parse_issue",
    "parse_pull",
    "parse_run",
    "parse_job",
    "parse_rate_limit_body",
    "label_names",
]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _need(data: Any, key: str, kind: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise GitHubError(f"GitHub's answer for {kind} lacks `{key}`; is api_url a GitHub API?")
    return data[key]


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def label_names(labels: Any) -> tuple[str, ...]:
    """Labels come as objects ({"name": ...}) and, in some payloads, as plain strings."""
    names: list[str] = []
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and isinstance(label.get("name"), str):
            names.append(label["name"])
        elif isinstance(label, str):
            names.append(label)
    return tuple(names)


def _logins(users: Any) -> tuple[str, ...]:
    return tuple(
        u["login"]
        for u in (users if isinstance(users, list) else [])
        if isinstance(u, dict) and isinstance(u.get("login"), str)
    )


def parse_issue(data: Any) -> Issue:
    number = int(_need(data, "number", "an issue"))
    return Issue(
        number=number,
        title=_str(data, "title"),
        body=_str(data, "body"),
        labels=label_names(data.get("labels")),
        state=_str(data, "state") or "open",
        assignees=_logins(data.get("assignees")),
        html_url=_str(data, "html_url"),
        is_pull_request="pull_request" in data,
    )


def _ref(side: Any) -> str:
    return side.get("ref", "") if isinstance(side, dict) else ""


def parse_pull(data: Any) -> PullRequest:
    number = int(_need(data, "number", "a pull request"))
    return PullRequest(
        number=number,
        title=_str(data, "title"),
        head=_ref(data.get("head")),
        base=_ref(data.get("base")),
        state=_str(data, "state") or "open",
        body=_str(data, "body"),
        html_url=_str(data, "html_url"),
        draft=bool(data.get("draft")),
        merged=bool(data.get("merged")) or bool(data.get("merged_at")),
        labels=label_names(data.get("labels")),
        created_at=parse_time(data.get("created_at")),
    )


def parse_run(data: Any) -> WorkflowRun:
    run_id = int(_need(data, "id", "a workflow run"))
    created = parse_time(data.get("created_at")) or datetime.now(UTC)
    return WorkflowRun(
        id=run_id,
        name=_str(data, "name"),
        run_number=int(data.get("run_number") or 0),
        event=_str(data, "event"),
        status=_str(data, "status"),
        conclusion=data.get("conclusion") if isinstance(data.get("conclusion"), str) else None,
        head_branch=_str(data, "head_branch"),
        head_sha=_str(data, "head_sha"),
        created_at=created,
        updated_at=parse_time(data.get("updated_at")) or created,
        html_url=_str(data, "html_url"),
        run_attempt=int(data.get("run_attempt") or 1),
        run_started_at=parse_time(data.get("run_started_at")),
        workflow_id=int(data.get("workflow_id") or 0),
        display_title=_str(data, "display_title"),
    )


def _parse_step(data: Any) -> Step | None:
    if not isinstance(data, dict) or "number" not in data:
        return None
    return Step(
        number=int(data["number"]),
        name=_str(data, "name"),
        status=_str(data, "status"),
        conclusion=data.get("conclusion") if isinstance(data.get("conclusion"), str) else None,
        started_at=parse_time(data.get("started_at")),
        completed_at=parse_time(data.get("completed_at")),
    )


def parse_job(data: Any) -> Job:
    job_id = int(_need(data, "id", "a job"))
    steps = [s for s in map(_parse_step, data.get("steps") or []) if s is not None]
    return Job(
        id=job_id,
        run_id=int(data.get("run_id") or 0),
        name=_str(data, "name"),
        status=_str(data, "status"),
        conclusion=data.get("conclusion") if isinstance(data.get("conclusion"), str) else None,
        started_at=parse_time(data.get("started_at")),
        completed_at=parse_time(data.get("completed_at")),
        html_url=_str(data, "html_url"),
        steps=tuple(sorted(steps, key=lambda s: s.number)),
    )


def parse_rate_limit_body(data: Any) -> RateLimit:
    """`GET /rate_limit`: the core budget, with every resource's remaining count in `extra`."""
    resources = data.get("resources") if isinstance(data, dict) else None
    core = (resources or {}).get("core") or (data or {}).get("rate")
    if not isinstance(core, dict):
        raise GitHubError("GitHub's /rate_limit answer lacks `resources.core`")
    extra = {
        name: int(entry.get("remaining", 0))
        for name, entry in (resources or {}).items()
        if isinstance(entry, dict) and name != "core"
    }
    return RateLimit(
        limit=int(core.get("limit", 0)),
        remaining=int(core.get("remaining", 0)),
        reset=datetime.fromtimestamp(int(core.get("reset", 0)), UTC),
        used=int(core.get("used", 0)),
        resource="core",
        extra=extra,
    )
