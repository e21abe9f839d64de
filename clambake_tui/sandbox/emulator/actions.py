"""GitHub Actions: workflows from the bare repo, dispatch validation, runs, jobs, logs, cancel, re-run."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clambake_tui.logs import get_logger
from clambake_tui.redact import register_secret
from clambake_tui.sandbox.emulator.errors import ApiError, not_found
from clambake_tui.sandbox.emulator.payloads import node_id, now_iso, simple_commit_payload
from clambake_tui.sandbox.emulator.runner import RunControl, base_env, execute_run, log_line
from clambake_tui.sandbox.emulator.server import RunToken
from clambake_tui.sandbox.emulator.store import JSON, RepoState, Store, Urls
from clambake_tui.sandbox.emulator.tokens import new_token
from clambake_tui.sandbox.emulator.workflows import (
    RunContext,
    StepsFactory,
    WorkflowFile,
    parse_workflow,
    steps_factory_for,
)

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.server import ApiServer

__all__ = ["Actions"]

log = get_logger(__name__)

WORKFLOWS_DIR = ".github/workflows"
DOC_DISPATCH = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
DOC_RUNS = "https://docs.github.com/rest/actions/workflow-runs"
LOG_LINK_SECONDS = 60.0
ACTIONS_BOT = "github-actions[bot]"
ACTIONS_TOKEN_LIMIT = 1000  # per hour and repository, as GitHub gives a GITHUB_TOKEN
MAX_INPUTS = 25


class Actions:
    """Workflow runs of every repository, and the threads that execute them."""

    def __init__(
        self,
        store: Store,
        api: ApiServer,
        *,
        queue_delay: float,
        workspace_root: Path | None,
        keep_workspaces: bool = False,
    ) -> None:
        self.store = store
        self.api = api
        self.queue_delay = queue_delay
        self.keep_workspaces = keep_workspaces
        self._root = workspace_root
        self._own_root = False
        self.overrides: dict[str, StepsFactory] = {}
        self.step_logs = True
        self.visible_delay = 0.0
        self.run_details = True
        self.gate = threading.Event()
        self.gate.set()
        self._controls: dict[int, RunControl] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._group_seq = 0

    @property
    def urls(self) -> Urls:
        return self.api.urls

    def workspace_root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="clambake-emulator-"))
            self._own_root = True
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root

    # workflows -----------------------------------------------------------------------------
    def workflow_files(self, repo: RepoState, sha: str | None = None) -> list[WorkflowFile]:
        git = repo.git
        sha = sha or git.branch_sha(repo.default_branch)
        if sha is None:
            return []
        out = []
        for name in git.list_dir(sha, WORKFLOWS_DIR):
            if not name.endswith((".yml", ".yaml")):
                continue
            path = f"{WORKFLOWS_DIR}/{name}"
            text = git.read_file(sha, path)
            if text is not None:
                out.append(parse_workflow(path, text))
        return out

    def workflow_record(self, repo: RepoState, path: str) -> JSON:
        record = repo.workflows.get(path)
        if record is None:
            now = now_iso()
            record = {"id": self.store.new_id(), "path": path, "created_at": now, "updated_at": now}
            repo.workflows[path] = record
        return record

    def find_workflow(self, repo: RepoState, key: str) -> tuple[JSON, WorkflowFile]:
        """By numeric id or file name, among the workflows on the default branch."""
        for wf in self.workflow_files(repo):
            record = self.workflow_record(repo, wf.path)
            if key in (str(record["id"]), Path(wf.path).name, wf.path):
                return record, wf
        raise not_found("https://docs.github.com/rest/actions/workflows#get-a-workflow")

    def render_workflow(self, repo: RepoState, record: JSON, wf: WorkflowFile) -> JSON:
        r = f"{self.urls.api}/repos/{repo.full_name}"
        return {
            "id": record["id"],
            "node_id": node_id("W", record["id"]),
            "name": wf.name,
            "path": wf.path,
            "state": record.get("state", "active"),
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "url": f"{r}/actions/workflows/{record['id']}",
            "html_url": f"{self.urls.web}/{repo.full_name}/blob/{repo.default_branch}/{wf.path}",
            "badge_url": f"{self.urls.web}/{repo.full_name}/workflows/{Path(wf.path).stem}/badge.svg",
        }

    # runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        repo: RepoState,
        record: JSON,
        wf: WorkflowFile,
        *,
        event: str,
        branch: str,
        sha: str,
        inputs: Mapping[str, Any],
        actor: str,
    ) -> JSON:
        with self.store.lock:
            number = repo.run_numbers.get(wf.path, 0) + 1
            repo.run_numbers[wf.path] = number
            now = now_iso()
            run_name = wf.raw.get("run-name")
            title = str(run_name) if run_name and "${{" not in str(run_name) else wf.name
            if event == "push":
                title = repo.git.commit(sha).message.splitlines()[0] if sha else title
            run: JSON = {
                "id": self.store.new_id(),
                "workflow_id": record["id"],
                "path": wf.path,
                "name": wf.name,
                "display_title": title,
                "run_number": number,
                "run_attempt": 1,
                "event": event,
                "status": "queued",
                "conclusion": None,
                "head_branch": branch,
                "head_sha": sha,
                "actor": actor,
                "triggering_actor": actor,
                "created_at": now,
                "updated_at": now,
                "run_started_at": now,
                "check_suite_id": self.store.new_id(),
                # Lists show a new run only after this moment, as GitHub's do after a few seconds.
                "listed_after": time.time() + self.visible_delay,
                "inputs": dict(inputs),
                "jobs": [],
                "attempts": [],
            }
            repo.runs[run["id"]] = run
            self._start_attempt(repo, run, wf, failed_only=False, only_job=None)
            return run

    def _start_attempt(
        self,
        repo: RepoState,
        run: JSON,
        wf: WorkflowFile,
        *,
        failed_only: bool,
        only_job: int | None,
    ) -> None:
        attempt = run["run_attempt"]
        workspace = self.workspace_root() / f"run-{run['id']}-{attempt}"
        token = self._issue_run_token(repo, wf)
        ctx = self._context(repo, run, wf, workspace, token)
        factory = steps_factory_for(wf.path, self.overrides)
        try:
            if wf.error:
                raise ValueError(wf.error)
            plans = list(factory(ctx))
        except Exception:
            # What GitHub reports for a workflow that cannot even start (a broken file).
            log.warning("workflow %s cannot start", wf.path, exc_info=True)
            self.api.run_tokens.pop(token, None)
            run.update(
                {"status": "completed", "conclusion": "startup_failure", "updated_at": now_iso()}
            )
            return
        previous = {j["name"]: j for j in run["jobs"] if j["run_attempt"] == attempt - 1}
        jobs: list[JSON] = []
        now = now_iso()
        for plan in plans:
            old = previous.get(plan.name)
            keep = old is not None and (
                (failed_only and old["conclusion"] in ("success", "skipped"))
                or (only_job is not None and old["id"] != only_job)
            )
            if keep and old is not None:
                job = {
                    **json.loads(json.dumps(old)),
                    "id": self.store.new_id(),
                    "run_attempt": attempt,
                }
            else:
                job = {
                    "id": self.store.new_id(),
                    "run_attempt": attempt,
                    "name": plan.name,
                    "status": "queued",
                    "conclusion": None,
                    "created_at": now,
                    "started_at": now,
                    "completed_at": None,
                    "runner_name": None,
                    "labels": [plan.runs_on],
                    "steps": [],
                }
            jobs.append(job)
        run["jobs"].extend(jobs)
        control = RunControl()
        with self._lock:
            self._controls[run["id"]] = control
        blocked = self._enter_concurrency_group(repo, run, wf)

        def done() -> None:
            # A run's GITHUB_TOKEN ends with it.
            self.api.run_tokens.pop(token, None)
            with self._lock:
                if self._controls.get(run["id"]) is control:
                    del self._controls[run["id"]]
                self._threads.pop(run["id"], None)

        thread = threading.Thread(
            target=execute_run,
            kwargs={
                "store": self.store,
                "run": run,
                "jobs": jobs,
                "plans": plans,
                "ctx": ctx,
                "bare_path": repo.bare_path,
                "control": control,
                "queue_delay": self.queue_delay,
                "gate": self.gate,
                "keep_workspace": self.keep_workspaces,
                "on_done": done,
                "blocked": blocked,
            },
            name=f"workflow-run-{run['id']}",
            daemon=True,
        )
        with self._lock:
            self._threads[run["id"]] = thread
        thread.start()

    def _enter_concurrency_group(
        self, repo: RepoState, run: JSON, wf: WorkflowFile
    ) -> Callable[[], bool]:
        """GitHub's `concurrency:` rules for a run about to start.

        One run of a group runs at a time; a newer run waits as `pending`, and a waiting run
        is cancelled when a newer one arrives (with cancel-in-progress, the running one too).
        """
        group, cancel_running = _concurrency(wf, repo, run)
        run["concurrency_group"] = group
        if group is None:
            return lambda: False
        self._group_seq += 1
        run["concurrency_seq"] = self._group_seq
        members = sorted(
            (
                other
                for other in repo.runs.values()
                if other is not run
                and other.get("concurrency_group") == group
                and other["status"] != "completed"
            ),
            key=lambda other: other.get("concurrency_seq", 0),
        )
        # The first is the group's running (or about to run) one; the others are waiting.
        for position, other in enumerate(members):
            if position > 0 or cancel_running:
                self.cancel(other)

        def blocked() -> bool:
            return any(
                other is not run
                and other.get("concurrency_group") == group
                and other["status"] != "completed"
                and other.get("concurrency_seq", 0) < run["concurrency_seq"]
                for other in repo.runs.values()
            )

        return blocked

    def _issue_run_token(self, repo: RepoState, wf: WorkflowFile) -> str:
        """A fresh GITHUB_TOKEN for one run attempt, with the workflow's permissions."""
        token = new_token("ghs_")
        register_secret(token)
        self.api.run_tokens[token] = RunToken(
            login=ACTIONS_BOT,
            identity=f"actions:{repo.id}",
            limit=ACTIONS_TOKEN_LIMIT,
            permissions=token_permissions(wf.raw),
        )
        return token

    def _context(
        self, repo: RepoState, run: JSON, wf: WorkflowFile, workspace: Path, token: str
    ) -> RunContext:
        api = self.urls.api
        branch = run["head_branch"]
        env = base_env()
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GH_TOKEN": token,
                "GITHUB_TOKEN": token,
                "CLAMBAKE_GITHUB__API_URL": api,
                "CLAMBAKE_GITHUB__OWNER": repo.owner,
                "CLAMBAKE_GITHUB__REPO": repo.name,
                "CLAMBAKE_GITHUB__DEFAULT_BRANCH": repo.default_branch,
                "GITHUB_API_URL": api,
                "GITHUB_SERVER_URL": self.urls.web,
                "GITHUB_REPOSITORY": repo.full_name,
                "GITHUB_REPOSITORY_OWNER": repo.owner,
                "GITHUB_REF": f"refs/heads/{branch}",
                "GITHUB_REF_NAME": branch,
                "GITHUB_REF_TYPE": "branch",
                "GITHUB_SHA": run["head_sha"],
                "GITHUB_RUN_ID": str(run["id"]),
                "GITHUB_RUN_NUMBER": str(run["run_number"]),
                "GITHUB_RUN_ATTEMPT": str(run["run_attempt"]),
                "GITHUB_WORKFLOW": wf.name,
                "GITHUB_WORKFLOW_REF": f"{repo.full_name}/{wf.path}@refs/heads/{branch}",
                "GITHUB_EVENT_NAME": run["event"],
                "GITHUB_ACTOR": run["actor"],
                "GITHUB_TRIGGERING_ACTOR": run["triggering_actor"],
                "RUNNER_OS": "Linux",
                "RUNNER_TEMP": str(workspace / "_temp"),
                "GIT_AUTHOR_NAME": "github-actions[bot]",
                "GIT_AUTHOR_EMAIL": "41898282+github-actions[bot]@users.noreply.github.com",
                "GIT_COMMITTER_NAME": "github-actions[bot]",
                "GIT_COMMITTER_EMAIL": "41898282+github-actions[bot]@users.noreply.github.com",
            }
        )
        return RunContext(
            workflow_path=wf.path,
            workflow=wf.raw,
            event=run["event"],
            inputs=dict(run["inputs"]),
            ref=branch,
            sha=run["head_sha"],
            repository=repo.full_name,
            api_url=api,
            token=token,
            run_id=run["id"],
            run_attempt=run["run_attempt"],
            workspace=workspace,
            env=env,
        )

    def cancel(self, run: JSON) -> None:
        if run["status"] == "completed":
            raise ApiError(
                409,
                "Cannot cancel a workflow run that is completed.",
                documentation_url=f"{DOC_RUNS}#cancel-a-workflow-run",
            )
        with self._lock:
            control = self._controls.get(run["id"])
        if control is not None:
            # Killing can take a grace period: do it off the request thread.
            threading.Thread(target=control.request_cancel, daemon=True).start()
        else:
            for job in run["jobs"]:
                if job["run_attempt"] == run["run_attempt"] and job["status"] != "completed":
                    job.update(
                        {
                            "status": "completed",
                            "conclusion": "cancelled",
                            "completed_at": now_iso(),
                        }
                    )
            run.update({"status": "completed", "conclusion": "cancelled", "updated_at": now_iso()})

    def rerun(
        self, repo: RepoState, run: JSON, *, failed_only: bool = False, only_job: int | None = None
    ) -> None:
        if run["status"] != "completed":
            raise ApiError(
                403,
                "This workflow is already running",
                documentation_url=f"{DOC_RUNS}#re-run-a-workflow",
            )
        wf_text = repo.git.read_file(run["head_sha"], run["path"]) or repo.git.read_file(
            repo.default_branch, run["path"]
        )
        wf = parse_workflow(run["path"], wf_text or "")
        if wf.name == wf.path and run["name"]:
            wf = WorkflowFile(wf.path, run["name"], wf.triggers, wf.raw)
        run["attempts"].append(
            {
                k: run[k]
                for k in ("run_attempt", "status", "conclusion", "run_started_at", "updated_at")
            }
        )
        now = now_iso()
        run.update(
            {
                "run_attempt": run["run_attempt"] + 1,
                "status": "queued",
                "conclusion": None,
                "run_started_at": now,
                "updated_at": now,
                "triggering_actor": self.store.login,
            }
        )
        self._start_attempt(repo, run, wf, failed_only=failed_only, only_job=only_job)

    def wait_idle(self, timeout: float) -> bool:
        """Join every run thread; False if some are still going after `timeout`."""
        end = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        return all(not t.is_alive() for t in threads)

    def stop(self) -> None:
        with self._lock:
            controls = list(self._controls.values())
        for control in controls:
            control.request_cancel()
        self.gate.set()
        self.wait_idle(10)
        if self._own_root and self._root is not None and not self.keep_workspaces:
            shutil.rmtree(self._root, ignore_errors=True)

    # rendering -----------------------------------------------------------------------------
    def render_run(self, repo: RepoState, run: JSON, attempt: JSON | None = None) -> JSON:
        r = f"{self.urls.api}/repos/{repo.full_name}"
        run_url = f"{r}/actions/runs/{run['id']}"
        view = {**run, **(attempt or {})}
        sha = run["head_sha"]
        try:
            head_commit: JSON | None = simple_commit_payload(repo.git.commit(sha)) if sha else None
        except Exception:
            head_commit = None
        minimal = self.store.render_repo(self.urls, repo, full=False)
        n = view["run_attempt"]
        return {
            "id": run["id"],
            "name": run["name"],
            "node_id": node_id("WFR", run["id"]),
            "head_branch": run["head_branch"],
            "head_sha": sha,
            "path": run["path"],
            "display_title": run["display_title"],
            "run_number": run["run_number"],
            "event": run["event"],
            "status": view["status"],
            "conclusion": view["conclusion"],
            "workflow_id": run["workflow_id"],
            "check_suite_id": run["check_suite_id"],
            "check_suite_node_id": node_id("CS", run["check_suite_id"]),
            "url": run_url,
            "html_url": f"{self.urls.web}/{repo.full_name}/actions/runs/{run['id']}",
            "pull_requests": [],
            "created_at": run["created_at"],
            "updated_at": view["updated_at"],
            "actor": self.store.user(self.urls, run["actor"]),
            "run_attempt": n,
            "referenced_workflows": [],
            "run_started_at": view["run_started_at"],
            "triggering_actor": self.store.user(self.urls, run["triggering_actor"]),
            "jobs_url": f"{run_url}/jobs",
            "logs_url": f"{run_url}/logs",
            "check_suite_url": f"{r}/check-suites/{run['check_suite_id']}",
            "artifacts_url": f"{run_url}/artifacts",
            "cancel_url": f"{run_url}/cancel",
            "rerun_url": f"{run_url}/rerun",
            "previous_attempt_url": f"{run_url}/attempts/{n - 1}" if n > 1 else None,
            "workflow_url": f"{r}/actions/workflows/{run['workflow_id']}",
            "head_commit": head_commit,
            "repository": minimal,
            "head_repository": minimal,
        }

    def render_job(self, repo: RepoState, run: JSON, job: JSON) -> JSON:
        r = f"{self.urls.api}/repos/{repo.full_name}"
        return {
            "id": job["id"],
            "run_id": run["id"],
            "workflow_name": run["name"],
            "head_branch": run["head_branch"],
            "run_url": f"{r}/actions/runs/{run['id']}",
            "run_attempt": job["run_attempt"],
            "node_id": node_id("CR", job["id"]),
            "head_sha": run["head_sha"],
            "url": f"{r}/actions/jobs/{job['id']}",
            "html_url": f"{self.urls.web}/{repo.full_name}/actions/runs/{run['id']}/job/{job['id']}",
            "status": job["status"],
            "conclusion": job["conclusion"],
            "created_at": job["created_at"],
            "started_at": job["started_at"],
            "completed_at": job["completed_at"],
            "name": job["name"],
            "steps": [
                {
                    k: s[k]
                    for k in (
                        "name",
                        "status",
                        "conclusion",
                        "number",
                        "started_at",
                        "completed_at",
                    )
                }
                for s in job["steps"]
            ],
            "check_run_url": f"{r}/check-runs/{job['id']}",
            "labels": list(job["labels"]),
            "runner_id": 1 if job["runner_name"] else None,
            "runner_name": job["runner_name"],
            "runner_group_id": 0 if job["runner_name"] else None,
            "runner_group_name": "GitHub Actions" if job["runner_name"] else None,
        }

    # logs ----------------------------------------------------------------------------------
    @staticmethod
    def job_log_text(job: JSON) -> str:
        lines: list[str] = []
        for step in job["steps"]:
            lines.extend(step.get("log", []))
        return "".join(line + "\n" for line in lines)

    def logs_zip(self, run: JSON, attempt: int) -> bytes:
        """GitHub's layout: `<n>_<job>.txt` per job and `<job>/<number>_<step>.txt` per step.

        With `step_logs=False`, as GitHub has often answered since 2025: no step files, only
        `<job>/system.txt` beside the whole-job file.
        """
        buffer = io.BytesIO()
        jobs = [j for j in run["jobs"] if j["run_attempt"] == attempt]
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for ordinal, job in enumerate(jobs):
                name = _file_name(job["name"])
                archive.writestr(f"{ordinal}_{name}.txt", self.job_log_text(job))
                if not self.step_logs:
                    system = [
                        f"Requested labels: {', '.join(job['labels'])}",
                        f"Job defined at: {run['path']}@refs/heads/{run['head_branch']}",
                        "Waiting for a runner to pick up this job...",
                        f"Job is about to start running on the runner: {job['runner_name']}",
                    ]
                    archive.writestr(
                        f"{name}/system.txt", "".join(log_line(t) + "\n" for t in system)
                    )
                    continue
                for step in job["steps"]:
                    if step.get("log"):
                        text = "".join(line + "\n" for line in step["log"])
                        archive.writestr(
                            f"{name}/{step['number']}_{_file_name(step['name'])}.txt", text
                        )
        return buffer.getvalue()


_ALL_SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
)


def token_permissions(workflow: Mapping[str, Any]) -> dict[str, str]:
    """The GITHUB_TOKEN's permissions: the first job's `permissions:`, else the workflow's,
    else write to everything (the permissive repository default)."""
    spec: Any = None
    jobs = workflow.get("jobs")
    if isinstance(jobs, dict) and jobs:
        first = next(iter(jobs.values()))
        if isinstance(first, dict) and "permissions" in first:
            spec = first["permissions"]
    if spec is None and "permissions" in workflow:
        spec = workflow["permissions"]
    if spec is None or spec == "write-all":
        return dict.fromkeys(_ALL_SCOPES, "write")
    if spec == "read-all":
        return dict.fromkeys(_ALL_SCOPES, "read")
    if isinstance(spec, dict):
        return {str(k): str(v) for k, v in spec.items()}
    return {}


def _concurrency(wf: WorkflowFile, repo: RepoState, run: JSON) -> tuple[str | None, bool]:
    """The run's concurrency group (its few `github.*` expressions filled in) and
    cancel-in-progress."""
    spec = wf.raw.get("concurrency")
    if isinstance(spec, dict):
        group, cancel = spec.get("group"), spec.get("cancel-in-progress", False)
    else:
        group, cancel = spec, False
    if not group:
        return None, False
    values = {
        "github.repository": repo.full_name,
        "github.workflow": wf.name,
        "github.ref": f"refs/heads/{run['head_branch']}",
        "github.ref_name": run["head_branch"],
        "github.event_name": run["event"],
        "github.head_ref": "",
        "github.run_id": str(run["id"]),
    }
    text = re.sub(
        r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), str(group)
    )
    return text, cancel is True or str(cancel).lower() == "true"


def _file_name(name: str) -> str:
    return name.replace("/", "").replace(":", "")[:90]
