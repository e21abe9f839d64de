"""The `Emulator`: a GitHub REST emulator on 127.0.0.1, with a seeding API, faults and Actions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from clambake_tui.logs import get_logger
from clambake_tui.redact import register_secret
from clambake_tui.sandbox.emulator.actions import Actions
from clambake_tui.sandbox.emulator.errors import ApiError
from clambake_tui.sandbox.emulator.faults import Fault
from clambake_tui.sandbox.emulator.http import Router
from clambake_tui.sandbox.emulator.limits import SecondaryLimits
from clambake_tui.sandbox.emulator.routes import register_routes
from clambake_tui.sandbox.emulator.server import ApiServer, RequestRecord
from clambake_tui.sandbox.emulator.store import JSON, RepoState, Store
from clambake_tui.sandbox.emulator.tokens import new_token
from clambake_tui.sandbox.emulator.web import web_page
from clambake_tui.sandbox.emulator.workflows import StepsFactory

__all__ = ["Emulator", "new_token"]

log = get_logger(__name__)

DEFAULT_LOGIN = "sandbox-operator"


class Emulator:
    """GitHub's REST API for a few repositories, served over real HTTP on loopback.

    `Emulator().start()` listens on an ephemeral port; `url` is the API base and `token` the one
    token it accepts. Seed with add_repo/add_label/add_issue; inject faults with add_fault;
    workflow runs execute in background threads (see workflows.register_workflow_steps).

    Options: `rate_limit` (per hour, the token), `allow_anonymous` (60/h reads without a
    token), `state_file` (JSON kept up to date, reloaded on start), `queue_delay` (seconds a
    new run stays queued), `run_listed_after` (seconds before a new run shows in run lists, as
    GitHub's take a few), `step_logs=False` (logs zips without step files, as GitHub often
    serves them), `schedule_every` (seconds between emulated cron ticks; None: never),
    `secondary_limits` (True: GitHub's secondary limits at its published numbers, or a
    `SecondaryLimits` with others), `run_details=False` (dispatch always answers 204, as an
    older GitHub Enterprise Server does).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        login: str = DEFAULT_LOGIN,
        rate_limit: int = 5000,
        anonymous_rate_limit: int = 60,
        allow_anonymous: bool = True,
        state_file: Path | None = None,
        web_url: str | None = None,
        queue_delay: float = 0.2,
        workspace_root: Path | None = None,
        keep_workspaces: bool = False,
        schedule_every: float | None = None,
        step_logs: bool = True,
        run_listed_after: float = 0.0,
        secondary_limits: SecondaryLimits | bool = False,
        run_details: bool = True,
    ) -> None:
        self.store = Store(login, Path(state_file) if state_file else None)
        saved: JSON = {}
        if state_file is not None and Path(state_file).is_file():
            saved = json.loads(Path(state_file).read_text())
            self.store.load_json(saved)
            self._settle_loaded_runs()
        self.token = token or saved.get("token") or new_token()
        register_secret(self.token)
        self.store.extra["token"] = self.token
        router = Router()
        self._api = ApiServer(
            store=self.store,
            router=router,
            token=self.token,
            rate_limit=rate_limit,
            anonymous_rate_limit=anonymous_rate_limit,
            allow_anonymous=allow_anonymous,
            host=host,
            port=port,
            web_url=web_url,
        )
        self.actions = Actions(
            self.store,
            self._api,
            queue_delay=queue_delay,
            workspace_root=workspace_root,
            keep_workspaces=keep_workspaces,
        )
        self.actions.step_logs = step_logs
        if secondary_limits:
            self._api.secondary_limits = (
                secondary_limits
                if isinstance(secondary_limits, SecondaryLimits)
                else SecondaryLimits()
            )
        self.actions.visible_delay = run_listed_after
        self.actions.run_details = run_details
        self.store.extra["port"] = self._api.port
        register_routes(router, self._api, self.actions)
        self._api.web = lambda path: web_page(path, self.store, self.actions)
        self._schedule_every = schedule_every
        self._schedule_stop = threading.Event()
        self._schedule_thread: threading.Thread | None = None
        self._started = False

    # lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API base, e.g. http://127.0.0.1:54321 (use as [github] api_url)."""
        return self._api.url

    @property
    def port(self) -> int:
        return self._api.port

    def start(self) -> Emulator:
        if not self._started:
            self._api.start()
            self._started = True
            if self._schedule_every:
                self._schedule_thread = threading.Thread(
                    target=self._cron, daemon=True, name="emulator-cron"
                )
                self._schedule_thread.start()
        return self

    def stop(self) -> None:
        self._schedule_stop.set()
        self.actions.stop()
        self._api.stop(serving=self._started)
        self._started = False
        self.save()

    def serve_forever(self) -> None:
        """Block serving requests (for `clambake sandbox serve`); stop() from another thread ends it."""
        self.start()
        try:
            while self._started:
                time.sleep(0.2)
        finally:
            self.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def save(self) -> None:
        """Write the state file now (it is also written after every successful write request)."""
        self.store.save()

    def _settle_loaded_runs(self) -> None:
        # A run that was going when the previous process stopped cannot resume: it was cancelled.
        for repo in self.store.repos.values():
            for run in repo.runs.values():
                if run["status"] != "completed":
                    run.update({"status": "completed", "conclusion": "cancelled"})
                    for job in run["jobs"]:
                        if job["status"] != "completed":
                            job.update({"status": "completed", "conclusion": "cancelled"})

    # seeding -------------------------------------------------------------------------------
    def add_repo(
        self, owner: str, name: str, bare_repo_path: Path, default_branch: str = "main"
    ) -> str:
        """Serve the bare repository at `bare_repo_path` as owner/name; returns "owner/name"."""
        repo = self.store.add_repo(owner, name, Path(bare_repo_path), default_branch)
        self.save()
        return repo.full_name

    def _repo(self, repo: str | None) -> RepoState:
        if repo is None:
            return self.store.default_repo()
        owner, _, name = repo.partition("/")
        try:
            return self.store.repo(owner, name)
        except ApiError:
            raise LookupError(f"no repository {repo} in the emulator") from None

    def add_label(
        self,
        name: str,
        color: str = "ededed",
        description: str | None = None,
        *,
        repo: str | None = None,
    ) -> None:
        with self.store.lock:
            target = self._repo(repo)
            record = target.ensure_label(self.store, name, color.removeprefix("#").lower())
            record["color"] = color.removeprefix("#").lower()
            record["description"] = description
        self.save()

    def add_issue(
        self,
        title: str,
        body: str = "",
        labels: Iterable[str] = (),
        *,
        assignees: Iterable[str] = (),
        state: str = "open",
        user: str | None = None,
        repo: str | None = None,
    ) -> int:
        """Create an issue (unknown labels are created); returns its number."""
        with self.store.lock:
            target = self._repo(repo)
            issue = self.store.create_issue(
                target,
                title=title,
                body=body,
                labels=list(labels),
                assignees=list(assignees),
                user=user,
                state=state,
            )
        self.save()
        return int(issue["number"])

    def add_comment(
        self, number: int, body: str, *, user: str | None = None, repo: str | None = None
    ) -> None:
        from clambake_tui.sandbox.emulator.payloads import now_iso

        with self.store.lock:
            target = self._repo(repo)
            issue = self.store.issue(target, number)
            now = now_iso()
            issue["comments"].append(
                {
                    "id": self.store.new_id(),
                    "body": body,
                    "user": user or self.store.login,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        self.save()

    def add_pull(
        self,
        head: str,
        title: str,
        body: str = "",
        *,
        base: str | None = None,
        labels: Iterable[str] = (),
        repo: str | None = None,
    ) -> int:
        """Open a pull request from branch `head` (already in the bare repository); its number.

        The same rules as POST /pulls apply: LookupError with GitHub's 422 message otherwise.
        """
        from clambake_tui.sandbox.emulator.routes.pulls import create_pull

        with self.store.lock:
            target = self._repo(repo)
            try:
                issue = create_pull(
                    self.store,
                    target,
                    head=head,
                    base=base or target.default_branch,
                    title=title,
                    body=body,
                )
            except ApiError as exc:
                details = "; ".join(str(e.get("message") or e) for e in exc.errors or [])
                raise LookupError(f"{exc.message}: {details}" if details else exc.message) from None
            self.store.add_labels(target, issue, list(labels))
        self.save()
        return int(issue["number"])

    # inspection (tests, demo) --------------------------------------------------------------
    def issue(self, number: int, *, repo: str | None = None) -> JSON:
        """The issue as GET /repos/o/r/issues/N would answer it."""
        with self.store.lock:
            target = self._repo(repo)
            return self.store.render_issue(self._api.urls, target, self.store.issue(target, number))

    def issue_labels(self, number: int, *, repo: str | None = None) -> list[str]:
        with self.store.lock:
            return list(self.store.issue(self._repo(repo), number)["labels"])

    def pulls(self, *, repo: str | None = None) -> list[JSON]:
        """Every pull request's issue record (title, body, state, pull: head_ref/base_ref/merged)."""
        with self.store.lock:
            target = self._repo(repo)
            return [json.loads(json.dumps(i)) for i in target.issues.values() if i.get("pull")]

    def runs(self, *, repo: str | None = None) -> list[JSON]:
        """Every workflow run as GET .../actions/runs/ID answers it, newest first."""
        with self.store.lock:
            target = self._repo(repo)
            return [
                self.actions.render_run(target, r)
                for r in sorted(target.runs.values(), key=lambda r: -r["id"])
            ]

    def run(self, run_id: int, *, repo: str | None = None) -> JSON:
        with self.store.lock:
            target = self._repo(repo)
            return self.actions.render_run(target, target.runs[run_id])

    def jobs(self, run_id: int, *, repo: str | None = None) -> list[JSON]:
        with self.store.lock:
            target = self._repo(repo)
            run = target.runs[run_id]
            return [
                self.actions.render_job(target, run, j)
                for j in run["jobs"]
                if j["run_attempt"] == run["run_attempt"]
            ]

    def wait_for_run(
        self,
        run_id: int,
        status: str = "completed",
        *,
        timeout: float = 60.0,
        repo: str | None = None,
    ) -> JSON:
        """Poll (with a deadline) until the run reaches `status`; returns it."""
        order = ("queued", "in_progress", "completed")
        end = time.monotonic() + timeout
        while True:
            run = self.run(run_id, repo=repo)
            if run["status"] == status or (
                status in order
                and run["status"] in order
                and order.index(run["status"]) >= order.index(status)
            ):
                return run
            if time.monotonic() > end:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout} s")
            time.sleep(0.02)

    def comments(self, number: int, *, repo: str | None = None) -> list[str]:
        """The bodies of an issue's comments, oldest first."""
        with self.store.lock:
            return [c["body"] for c in self.store.issue(self._repo(repo), number)["comments"]]

    def job_log(self, job_id: int, *, repo: str | None = None) -> str:
        """A job's whole log as the job-logs endpoint serves it (so far, even while it runs)."""
        with self.store.lock:
            for run in self._repo(repo).runs.values():
                for job in run["jobs"]:
                    if job["id"] == job_id:
                        return self.actions.job_log_text(job)
        raise LookupError(f"no job {job_id}")

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, in order."""
        with self._api._records_lock:
            return list(self._api.records)

    def clear_requests(self) -> None:
        with self._api._records_lock:
            self._api.records.clear()

    # faults and budgets --------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        return self._api.faults.add(fault)

    def remove_fault(self, fault: Fault) -> None:
        self._api.faults.remove(fault)

    def clear_faults(self) -> None:
        self._api.faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return self._api.faults.faults

    def set_rate_limit(
        self,
        *,
        limit: int | None = None,
        remaining: int | None = None,
        reset_in: float | None = None,
    ) -> None:
        """Change the token's primary budget (remaining=0 exhausts it)."""
        with self.store.lock:
            budget = self._api.budget("token")
            if limit is not None:
                budget.limit = limit
                self._api.rate_limit = limit
            if remaining is not None:
                budget.used = max(0, budget.limit - remaining)
            if reset_in is not None:
                budget.reset = int(time.time() + reset_in)

    def rate_limit_remaining(self) -> int:
        with self.store.lock:
            return self._api.budget("token").remaining

    # actions -------------------------------------------------------------------------------
    def register_workflow_steps(self, file_name: str, factory: StepsFactory) -> None:
        """For this emulator only: runs of `file_name` execute `factory`'s jobs."""
        self.actions.overrides[Path(file_name).name] = factory

    def hold_runs(self) -> None:
        """Keep new runs queued until release_runs() (to observe the queued state)."""
        self.actions.gate.clear()

    def release_runs(self) -> None:
        self.actions.gate.set()

    def dispatch(
        self,
        workflow: str,
        ref: str | None = None,
        inputs: dict[str, Any] | None = None,
        *,
        event: str = "workflow_dispatch",
        repo: str | None = None,
    ) -> int:
        """Start a run directly (no HTTP, no validation of inputs); returns its id."""
        with self.store.lock:
            target = self._repo(repo)
            record, wf = self.actions.find_workflow(target, workflow)
            found = target.git.resolve_branch_or_tag(ref or target.default_branch)
            if found is None:
                raise LookupError(f"no ref {ref}")
            branch, sha = found
            run = self.actions.create_run(
                target,
                record,
                wf,
                event=event,
                branch=branch,
                sha=sha,
                inputs=inputs or {},
                actor=self.store.login,
            )
            return int(run["id"])

    def tick_schedule(self, *, repo: str | None = None) -> list[int]:
        """Fire a `schedule` run of every workflow with a cron trigger; returns the run ids."""
        started: list[int] = []
        with self.store.lock:
            targets: Sequence[RepoState] = (
                [self._repo(repo)] if repo else list(self.store.repos.values())
            )
            for target in targets:
                for wf in self.actions.workflow_files(target):
                    record = self.actions.workflow_record(target, wf.path)
                    if wf.schedules and record.get("state", "active") == "active":
                        started.append(
                            self.dispatch(wf.path, event="schedule", repo=target.full_name)
                        )
        return started

    def _cron(self) -> None:
        assert self._schedule_every
        while not self._schedule_stop.wait(self._schedule_every):
            try:
                self.tick_schedule()
            except Exception:  # a broken workflow file must not end the emulated cron
                log.warning("emulated cron failed", exc_info=True)
