"""Plain domain dataclasses shared by the engine, the command line and the dashboard."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "AgentState",
    "ProcessStatus",
    "AgentResult",
    "ResourceUsage",
    "AgentProcess",
    "AgentStatus",
    "Issue",
    "PullRequest",
    "WorkflowRun",
    "Job",
    "Step",
    "RateLimit",
    "utcnow",
    "PRIORITY_LABELS",
    "priority_rank",
    "AGENT_ID_PATTERN",
    "AGENT_BRANCH_PATTERN",
]

# agent001 ... agent999: the agent's id, and the label on the issue it holds.
AGENT_ID_PATTERN = re.compile(r"^agent(?!000)\d{3}$")
# `agent001/12` or `agent001/12-fix-login` (the original bundler missed the second form).
AGENT_BRANCH_PATTERN = re.compile(
    r"^(?P<agent>agent(?!000)\d{3})/(?P<issue>[1-9]\d*)(?:-(?P<slug>.+))?$"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class AgentState(enum.StrEnum):
    STARTING = "starting"
    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    TERMINATED = "terminated"

    @property
    def is_final(self) -> bool:
        return self in (AgentState.COMPLETED, AgentState.FAILED, AgentState.TERMINATED)


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """Starting | Working(last_activity) | Completed(exit_code) | Failed(error) | Terminated."""

    state: AgentState
    last_activity: datetime | None = None
    exit_code: int | None = None
    error: str | None = None

    @classmethod
    def starting(cls) -> ProcessStatus:
        return cls(AgentState.STARTING)

    @classmethod
    def working(cls, last_activity: datetime) -> ProcessStatus:
        return cls(AgentState.WORKING, last_activity=last_activity)

    @classmethod
    def completed(cls, exit_code: int) -> ProcessStatus:
        return cls(AgentState.COMPLETED, exit_code=exit_code)

    @classmethod
    def failed(cls, error: str, exit_code: int | None = None) -> ProcessStatus:
        return cls(AgentState.FAILED, exit_code=exit_code, error=error)

    @classmethod
    def terminated(cls, exit_code: int | None = None) -> ProcessStatus:
        return cls(AgentState.TERMINATED, exit_code=exit_code)

    def __str__(self) -> str:
        if self.state is AgentState.FAILED and self.error:
            return f"failed: {self.error}"
        if self.state is AgentState.COMPLETED and self.exit_code is not None:
            return f"completed (exit {self.exit_code})"
        return self.state.value


@dataclass(frozen=True, slots=True)
class AgentResult:
    """What Claude Code's final `result` event said."""

    is_error: bool
    subtype: str
    num_turns: int | None = None
    duration_ms: int | None = None
    total_cost_usd: float | None = None
    session_id: str | None = None
    text: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        # `subtype: "success"` with `is_error: true` is a failure (auth, bad model, rate limit).
        return not self.is_error and self.subtype == "success"


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """CPU, memory and open files of an agent's whole process tree."""

    cpu_percent: float = 0.0
    rss_bytes: int = 0
    open_files: int = 0
    num_processes: int = 0


@dataclass(frozen=True, slots=True)
class AgentProcess:
    """One agent run as the registry records it."""

    process_id: str
    agent_id: str
    issue_number: int
    branch_name: str
    status: ProcessStatus
    started_at: datetime
    pid: int | None
    worktree: Path
    log_path: Path
    restarts: int = 0
    session_id: str | None = None
    # psutil's create_time of `pid`: pids are reused, (pid, create_time) is not.
    pid_create_time: float | None = None
    issue_title: str = ""
    ended_at: datetime | None = None
    result: AgentResult | None = None

    @property
    def is_active(self) -> bool:
        return not self.status.state.is_final


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What `monitor_agent` answers: status, last activity and resources."""

    process: AgentProcess
    status: ProcessStatus
    last_activity: datetime | None
    current_tool: str | None
    last_text: str | None
    resources: ResourceUsage
    result: AgentResult | None = None


PRIORITY_LABELS: tuple[str, ...] = (
    "route:priority-very-high",
    "route:priority-high",
    "route:priority-medium",
    "route:priority-low",
)


def priority_rank(labels: tuple[str, ...] | list[str]) -> int:
    """0 for very-high ... 3 for low, 4 for no priority label (lower goes first)."""
    for rank, label in enumerate(PRIORITY_LABELS):
        if label in labels:
            return rank
    return len(PRIORITY_LABELS)


@dataclass(frozen=True, slots=True)
class Issue:
    number: int
    title: str
    body: str = ""
    labels: tuple[str, ...] = ()
    state: str = "open"
    assignees: tuple[str, ...] = ()
    html_url: str = ""
    is_pull_request: bool = False


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    title: str
    head: str
    base: str
    state: str = "open"
    body: str = ""
    html_url: str = ""
    draft: bool = False
    merged: bool = False
    labels: tuple[str, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    name: str
    status: str
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    run_id: int
    name: str
    status: str
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    html_url: str = ""
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    id: int
    name: str
    run_number: int
    event: str
    status: str
    conclusion: str | None
    head_branch: str
    head_sha: str
    created_at: datetime
    updated_at: datetime
    html_url: str = ""
    run_attempt: int = 1
    run_started_at: datetime | None = None
    workflow_id: int = 0
    display_title: str = ""

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    def duration_seconds(self, now: datetime | None = None) -> float:
        start = self.run_started_at or self.created_at
        end = self.updated_at if self.is_completed else (now or utcnow())
        return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    remaining: int
    reset: datetime
    used: int = 0
    resource: str = "core"
    extra: dict[str, int] = field(default_factory=dict)
