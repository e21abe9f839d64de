"""Runs a workflow run for real: a fresh clone per attempt, each step a subprocess, logs captured."""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from clambake_tui.logs import get_logger
from clambake_tui.sandbox.emulator.payloads import now_iso
from clambake_tui.sandbox.emulator.store import JSON, Store
from clambake_tui.sandbox.emulator.workflows import JobSpec, RunContext, StepSpec

__all__ = ["RunControl", "execute_run", "log_line", "base_env"]

log = get_logger(__name__)

RUNNER_NAME = "GitHub Actions 1000000"
_KILL_GRACE = 2.5


def log_line(text: str) -> str:
    """A log line as GitHub writes it: `2026-04-07T12:57:33.2904078Z text` (7 fractional digits)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z " + text


def base_env() -> dict[str, str]:
    """The runner's environment: the host's, minus credentials and clambake settings."""
    dropped = (
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "GH_HOST",
    )
    return {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("CLAMBAKE_", "GITHUB_", "RUNNER_"))
    }


class RunControl:
    """Cancel switch and the process currently running for one run attempt."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.groups: list[int] = []  # process groups of this job's steps, ended at job end

    def request_cancel(self) -> None:
        self.cancel.set()
        with self.lock:
            proc = self.process
        if proc is not None:
            _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """GitHub's runner ends a cancelled step's whole process tree."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_KILL_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def execute_run(
    *,
    store: Store,
    run: JSON,
    jobs: list[JSON],
    plans: Sequence[JobSpec],
    ctx: RunContext,
    bare_path: str,
    control: RunControl,
    queue_delay: float,
    gate: threading.Event,
    keep_workspace: bool,
    on_done: Callable[[], None],
    blocked: Callable[[], bool] = lambda: False,
) -> None:
    """The body of a run's thread: queued (pending behind its concurrency group) -> in_progress
    -> completed."""
    try:
        _execute(store, run, jobs, plans, ctx, bare_path, control, queue_delay, gate, blocked)
    except Exception:
        log.error("emulated workflow run failed", exc_info=True)
        with store.lock:
            _finish_remaining(run, jobs, "failure")
    finally:
        if not keep_workspace:
            shutil.rmtree(ctx.workspace, ignore_errors=True)
        on_done()


def _execute(
    store: Store,
    run: JSON,
    jobs: list[JSON],
    plans: Sequence[JobSpec],
    ctx: RunContext,
    bare_path: str,
    control: RunControl,
    queue_delay: float,
    gate: threading.Event,
    blocked: Callable[[], bool],
) -> None:
    deadline = time.monotonic() + queue_delay
    while not control.cancel.is_set():
        if time.monotonic() < deadline or not gate.is_set():
            control.cancel.wait(0.02)
            continue
        with store.lock:
            waiting = blocked()
            if waiting and run["status"] == "queued":
                # Behind another run of its concurrency group, as GitHub shows it.
                run["status"] = "pending"
                run["updated_at"] = now_iso()
        if not waiting:
            break
        control.cancel.wait(0.05)
    if control.cancel.is_set():
        with store.lock:
            _finish_remaining(run, jobs, "cancelled")
        return
    with store.lock:
        run["status"] = "in_progress"
        run["run_started_at"] = run["updated_at"] = now_iso()
    results = []
    for job, plan in zip(jobs, plans, strict=True):
        if job.get("status") == "completed":
            results.append(job["conclusion"])  # carried over from the previous attempt
            continue
        if control.cancel.is_set():
            with store.lock:
                _complete_job(job, "cancelled")
            results.append("cancelled")
            continue
        results.append(_run_job(store, run, job, plan, ctx, bare_path, control))
    with store.lock:
        if control.cancel.is_set() or "cancelled" in results:
            conclusion = "cancelled"
        elif "failure" in results:
            conclusion = "failure"
        else:
            conclusion = "success"
        run["status"] = "completed"
        run["conclusion"] = conclusion
        run["updated_at"] = now_iso()
    store.save()


def _finish_remaining(run: JSON, jobs: list[JSON], conclusion: str) -> None:
    for job in jobs:
        if job.get("status") != "completed":
            _complete_job(job, conclusion)
    run["status"] = "completed"
    run["conclusion"] = conclusion
    run["updated_at"] = now_iso()


def _complete_job(job: JSON, conclusion: str) -> None:
    now = now_iso()
    job["status"] = "completed"
    job["conclusion"] = conclusion
    job["started_at"] = job.get("started_at") or now
    job["completed_at"] = now
    for step in job["steps"]:
        if step["status"] != "completed":
            was_running = step["status"] == "in_progress"
            step["status"] = "completed"
            step["conclusion"] = (
                "cancelled" if conclusion == "cancelled" and was_running else "skipped"
            )
            step["completed_at"] = now


def _new_step(job: JSON, name: str) -> JSON:
    step: JSON = {
        "name": name,
        "status": "queued",
        "conclusion": None,
        "number": len(job["steps"]) + 1,
        "started_at": None,
        "completed_at": None,
        "log": [],
    }
    job["steps"].append(step)
    return step


def _run_job(
    store: Store,
    run: JSON,
    job: JSON,
    plan: JobSpec,
    ctx: RunContext,
    bare_path: str,
    control: RunControl,
) -> str:
    workspace = ctx.workspace / _safe(plan.name)
    with store.lock:
        job["status"] = "in_progress"
        job["started_at"] = now_iso()
        job["runner_name"] = RUNNER_NAME
        setup = _new_step(job, "Set up job")
        user_steps = [_new_step(job, spec.name) for spec in plan.steps]
        complete = _new_step(job, "Complete job")
    deadline = None if plan.timeout_seconds is None else time.monotonic() + plan.timeout_seconds

    ok = _set_up(store, setup, plan, ctx, bare_path, workspace)
    job_conclusion = "success" if ok else "failure"
    env = dict(ctx.env)
    env["GITHUB_WORKSPACE"] = str(workspace)
    env["GITHUB_JOB"] = _safe(plan.name)
    outputs: dict[str, dict[str, str]] = {}
    for spec, step in zip(plan.steps, user_steps, strict=True):
        wanted = spec.when is None or spec.when(outputs)
        if job_conclusion != "success" or control.cancel.is_set() or not wanted:
            with store.lock:
                step["status"] = "completed"
                step["conclusion"] = "skipped"
                step["started_at"] = step["completed_at"] = now_iso()
            continue
        outcome = _run_step(
            store, step, spec, env, workspace, control, deadline, ctx, outputs, plan.timeout_seconds
        )
        if outcome in ("cancelled", "job_timeout"):
            job_conclusion = "cancelled"
        elif outcome == "failure" and not spec.continue_on_error:
            job_conclusion = "failure"
    with store.lock:
        _start_step(complete)
        complete["log"].append(log_line("Cleaning up orphan processes"))
    # What the steps left running in the background ends with the job, as on a runner.
    with control.lock:
        groups, control.groups = control.groups, []
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    with store.lock:
        _end_step(complete, "success")
        job["status"] = "completed"
        job["conclusion"] = job_conclusion
        job["completed_at"] = now_iso()
    return job_conclusion


def _start_step(step: JSON) -> None:
    step["status"] = "in_progress"
    step["started_at"] = now_iso()


def _end_step(step: JSON, conclusion: str) -> None:
    step["status"] = "completed"
    step["conclusion"] = conclusion
    step["completed_at"] = now_iso()


def _set_up(
    store: Store, step: JSON, plan: JobSpec, ctx: RunContext, bare_path: str, workspace: Path
) -> bool:
    with store.lock:
        _start_step(step)
        add = step["log"].append
        add(log_line("Current runner version: '2.329.0'"))
        add(log_line(f"Runner name: '{RUNNER_NAME}'"))
        add(log_line("##[group]Operating System"))
        add(log_line("Ubuntu"))
        add(log_line("##[endgroup]"))
        add(log_line(f"Runs on: {plan.runs_on}"))
        add(log_line(f"Checking out {ctx.repository}@{ctx.sha} ({ctx.ref})"))
    workspace.parent.mkdir(parents=True, exist_ok=True)
    clone = subprocess.run(
        ["git", "clone", "-q", "--no-checkout", bare_path, str(workspace)],
        capture_output=True,
        text=True,
        check=False,
    )
    checkout = None
    if clone.returncode == 0:
        # A branch is checked out as a branch (so a step can commit and push), anything else detached.
        branch_args = (
            ["checkout", "-q", "-B", ctx.ref, ctx.sha]
            if ctx.ref
            else ["checkout", "-q", "--detach", ctx.sha]
        )
        checkout = subprocess.run(
            ["git", "-C", str(workspace), *branch_args], capture_output=True, text=True, check=False
        )
    ok = clone.returncode == 0 and checkout is not None and checkout.returncode == 0
    with store.lock:
        if not ok:
            err = (clone.stderr or (checkout.stderr if checkout else "")).strip()
            step["log"].append(log_line(f"##[error]Checkout failed: {err}"))
        else:
            step["log"].append(log_line("Complete job name: " + plan.name))
        _end_step(step, "success" if ok else "failure")
    return ok


def _run_step(
    store: Store,
    step: JSON,
    spec: StepSpec,
    env: dict[str, str],
    workspace: Path,
    control: RunControl,
    deadline: float | None,
    ctx: RunContext,
    outputs: dict[str, dict[str, str]],
    job_timeout: float | None = None,
) -> str:
    with store.lock:
        _start_step(step)
        for line in spec.lines:
            step["log"].append(log_line(line))
    if spec.argv is None:
        with store.lock:
            _end_step(step, "success")
        return "success"
    files = ctx.workspace / "_runner_file_commands"
    files.mkdir(parents=True, exist_ok=True)
    summary = files / f"step_summary_{step['number']}"
    output_file = files / f"set_output_{step['number']}"
    env_file = files / f"set_env_{step['number']}"
    for path in (summary, output_file, env_file):
        path.write_text("")
    (ctx.workspace / "_temp").mkdir(exist_ok=True)
    # Each step gets its own file-command files, as on GitHub; a step's explicit env wins.
    step_env = {
        **env,
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_ENV": str(env_file),
        **spec.env,
    }
    shown = _shown_command(spec).splitlines() or [""]
    with store.lock:
        # As GitHub prints a `run:` step: its first line in the group title, then the script.
        step["log"].append(log_line(f"##[group]Run {shown[0]}"))
        step["log"].extend(log_line(line) for line in shown)
        step["log"].append(log_line("##[endgroup]"))
    cwd = workspace / spec.cwd if spec.cwd else workspace
    try:
        proc = subprocess.Popen(
            list(spec.argv),
            cwd=cwd,
            env=step_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        with store.lock:
            step["log"].append(log_line(f"##[error]{exc.strerror or exc}: {spec.argv[0]}"))
            _end_step(step, "failure")
        return "failure"
    with control.lock:
        control.process = proc
        control.groups.append(proc.pid)
    exited = threading.Event()
    reader = threading.Thread(target=_pump, args=(proc, step, store, exited), daemon=True)
    reader.start()
    step_deadline = (
        None if spec.timeout_seconds is None else time.monotonic() + spec.timeout_seconds
    )
    limits = [d for d in (deadline, step_deadline) if d is not None]
    limit = min(limits) if limits else None
    outcome = None
    while proc.poll() is None:
        if control.cancel.is_set():
            _terminate(proc)
            outcome = "cancelled"
            break
        if limit is not None and time.monotonic() > limit:
            _terminate(proc)
            # The job's timeout-minutes cancels the job; a step's own timeout fails the step.
            outcome = "job_timeout" if limit == deadline else "timed_out"
            break
        control.cancel.wait(0.05)
    proc.wait()
    exited.set()
    # The reader drains what the process wrote, then stops even if something it started in
    # the background still holds the pipe: the step ends with its process, as on a runner.
    reader.join(timeout=10)
    with control.lock:
        control.process = None
    code = proc.returncode
    with store.lock:
        if outcome == "cancelled":
            step["log"].append(log_line("##[error]The operation was canceled."))
            _end_step(step, "cancelled")
        elif outcome == "job_timeout":
            minutes = f"{(job_timeout or 0) / 60:g}"
            step["log"].append(
                log_line(
                    f"##[error]The job running on runner {RUNNER_NAME} has exceeded the maximum "
                    f"execution time of {minutes} minutes."
                )
            )
            _end_step(step, "cancelled")
        elif outcome == "timed_out":
            step["log"].append(log_line("##[error]The action has timed out."))
            _end_step(step, "failure")
            outcome = "failure"
        elif code != 0:
            step["log"].append(log_line(f"##[error]Process completed with exit code {code}."))
            _end_step(step, "failure")
            outcome = "failure"
        else:
            _end_step(step, "success")
            outcome = "success"
        text = summary.read_text(errors="replace") if summary.exists() else ""
        if text.strip():
            step["summary"] = text
    if spec.id:
        outputs[spec.id] = read_file_commands(output_file)
    env.update(read_file_commands(env_file))
    return outcome


def read_file_commands(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIM` ... `DELIM` blocks, as $GITHUB_OUTPUT/$GITHUB_ENV hold."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return values
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        i += 1
    return values


def _shown_command(spec: StepSpec) -> str:
    """The script of `bash -c SCRIPT` style steps, else the command line."""
    assert spec.argv is not None
    if spec.display is not None:
        return spec.display
    argv = list(spec.argv)
    if "-c" in argv[:-1] and argv.index("-c") == len(argv) - 2:
        return argv[-1]
    return shlex.join(argv)


def _pump(proc: subprocess.Popen[bytes], step: JSON, store: Store, exited: threading.Event) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            if exited.is_set():
                break  # the process is gone and nothing more is coming right now
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            with store.lock:
                step["log"].extend(log_line(_text(raw)) for raw in lines)
    if pending:
        with store.lock:
            step["log"].append(log_line(_text(pending)))
    proc.stdout.close()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def _safe(name: str) -> str:
    """Job and step names as GitHub writes them into log file names."""
    return name.replace("/", "").replace(":", "")[:90]
