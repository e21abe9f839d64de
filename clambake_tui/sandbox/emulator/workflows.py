"""Workflow files and what running them means: triggers, dispatch inputs, and the steps registry.

The emulator does not interpret a workflow's `run:` scripts. What a run executes comes from a
steps factory registered for the workflow's file name; a factory gets the run's context (inputs,
environment, workspace) and returns the jobs and steps to run as real subprocesses. Workflows
without a factory get their YAML job and step names with nothing executed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "StepSpec",
    "JobSpec",
    "RunContext",
    "StepsFactory",
    "WorkflowFile",
    "register_workflow_steps",
    "unregister_workflow_steps",
    "steps_factory_for",
    "bundling_steps",
    "BUNDLING_WORKFLOW",
    "parse_workflow",
]

BUNDLING_WORKFLOW = "clambake-bundling.yml"


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step: a command (argv) run in the workspace, or (argv None) a step that only logs."""

    name: str
    argv: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None  # relative to the workspace
    timeout_seconds: float | None = None
    continue_on_error: bool = False
    lines: tuple[str, ...] = ()  # logged before the command's output (or alone, without argv)
    id: str | None = None  # its outputs ($GITHUB_OUTPUT) are then visible to later `when`s
    # Run only if this says so, given the outputs of earlier steps by id (`if:` in YAML).
    when: Callable[[Mapping[str, Mapping[str, str]]], bool] | None = None
    display: str | None = None  # what the log shows as the command (default: the script/argv)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job: its name as GitHub shows it and its steps (Set up / Complete job are added)."""

    name: str
    steps: tuple[StepSpec, ...]
    timeout_seconds: float | None = None
    runs_on: str = "ubuntu-latest"


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a steps factory knows about the run it plans."""

    workflow_path: str
    workflow: Mapping[str, Any]
    event: str
    inputs: Mapping[str, Any]
    ref: str
    sha: str
    repository: str
    api_url: str
    token: str
    run_id: int
    run_attempt: int
    workspace: Path
    env: Mapping[str, str]


StepsFactory = Callable[[RunContext], Sequence[JobSpec]]

_lock = threading.Lock()
_registry: dict[str, StepsFactory] = {}


def register_workflow_steps(file_name: str, factory: StepsFactory) -> None:
    """Make runs of the workflow `file_name` (e.g. clambake-bundling.yml) execute `factory`'s jobs."""
    with _lock:
        _registry[Path(file_name).name] = factory


def unregister_workflow_steps(file_name: str) -> None:
    with _lock:
        _registry.pop(Path(file_name).name, None)


def steps_factory_for(
    path: str, overrides: Mapping[str, StepsFactory] | None = None
) -> StepsFactory:
    name = Path(path).name
    if overrides and name in overrides:
        return overrides[name]
    with _lock:
        return _registry.get(name, declared_steps)


@dataclass(frozen=True, slots=True)
class WorkflowFile:
    """A parsed workflow file: its name, triggers and dispatch inputs."""

    path: str
    name: str
    triggers: Mapping[str, Any]
    raw: Mapping[str, Any]
    error: str | None = None

    @property
    def dispatchable(self) -> bool:
        return "workflow_dispatch" in self.triggers

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        spec = self.triggers.get("workflow_dispatch") or {}
        inputs = spec.get("inputs") if isinstance(spec, dict) else None
        if not isinstance(inputs, dict):
            return {}
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in inputs.items()}

    @property
    def schedules(self) -> list[str]:
        entries = self.triggers.get("schedule") or []
        if not isinstance(entries, list):
            return []
        return [str(e.get("cron")) for e in entries if isinstance(e, dict) and e.get("cron")]


def parse_workflow(path: str, text: str) -> WorkflowFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return WorkflowFile(path, path, {}, {}, error=f"invalid YAML: {exc}")
    if not isinstance(data, dict):
        return WorkflowFile(path, path, {}, {}, error="not a mapping")
    # YAML 1.1 reads the bare key `on` as the boolean true.
    on = data.get("on", data.get(True))
    triggers: dict[str, Any]
    if isinstance(on, str):
        triggers = {on: None}
    elif isinstance(on, list):
        triggers = {str(t): None for t in on}
    elif isinstance(on, dict):
        triggers = {str(k): v for k, v in on.items()}
    else:
        triggers = {}
    name = data.get("name")
    return WorkflowFile(path, str(name) if name else path, triggers, data)


def declared_steps(ctx: RunContext) -> Sequence[JobSpec]:
    """The jobs and steps the YAML declares, logged but not executed."""
    jobs = ctx.workflow.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return [JobSpec("build", (StepSpec("Run workflow", lines=("Nothing to run.",)),))]
    out = []
    for job_id, job in jobs.items():
        job = job if isinstance(job, dict) else {}
        steps = []
        for index, step in enumerate(job.get("steps") or [], start=1):
            step = step if isinstance(step, dict) else {}
            label = step.get("name") or (
                f"Run {step['uses']}"
                if step.get("uses")
                else f"Run {str(step.get('run', '')).splitlines()[0] if step.get('run') else index}"
            )
            steps.append(StepSpec(str(label)[:100], lines=("(emulated step: not executed)",)))
        if not steps:
            steps.append(StepSpec("Run job", lines=("(emulated job: not executed)",)))
        out.append(JobSpec(str(job.get("name") or job_id), tuple(steps)))
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _first_job_name(workflow: Mapping[str, Any], default: str) -> str:
    jobs = workflow.get("jobs")
    if isinstance(jobs, dict) and jobs:
        job_id, job = next(iter(jobs.items()))
        if isinstance(job, dict) and job.get("name"):
            return str(job["name"])
        return str(job_id)
    return default


def clambake_executable() -> str:
    """The `clambake` console script of the running interpreter's environment."""
    candidate = Path(sys.executable).with_name("clambake")
    return str(candidate) if candidate.exists() else "clambake"


def bundling_steps(ctx: RunContext) -> Sequence[JobSpec]:
    """clambake-bundling.yml: its steps, with `clambake bundle` run from this environment.

    Checking out happens in "Set up job"; Python and clambake are already installed here, so
    those two steps only log. The queue check and the bundle run the product's own command
    with the workflow's inputs (`force_bundle`, `dry_run`), exactly as the YAML does.
    """
    exe = clambake_executable()
    force = _truthy(ctx.inputs.get("force_bundle", ctx.inputs.get("force", False)))
    dry_run = _truthy(ctx.inputs.get("dry_run", False))
    check = [exe, "bundle", "--local", "--check"] + (["--force"] if force else [])
    bundle = [exe, "bundle", "--local"]
    if force:
        bundle.append("--force")
    if dry_run:
        bundle.append("--dry-run")
    return [
        JobSpec(
            _first_job_name(ctx.workflow, "bundle"),
            (
                StepSpec("Check out", lines=(f"Checked out {ctx.repository} at {ctx.sha}",)),
                StepSpec("Set up Python", lines=(f"Using {sys.executable}",)),
                StepSpec("Install clambake", lines=(f"Using {exe}",)),
                StepSpec("Check the queue", tuple(check), id="check"),
                StepSpec(
                    "Bundle",
                    tuple(bundle),
                    when=lambda outputs: outputs.get("check", {}).get("should_bundle") == "true",
                ),
            ),
            timeout_seconds=_job_timeout(ctx.workflow),
        )
    ]


def _job_timeout(workflow: Mapping[str, Any]) -> float | None:
    jobs = workflow.get("jobs")
    if isinstance(jobs, dict) and jobs:
        job = next(iter(jobs.values()))
        if isinstance(job, dict) and isinstance(job.get("timeout-minutes"), int | float):
            return float(job["timeout-minutes"]) * 60
    return None


register_workflow_steps(BUNDLING_WORKFLOW, bundling_steps)
