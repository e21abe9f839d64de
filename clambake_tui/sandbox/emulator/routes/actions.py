"""Routes for GitHub Actions: workflows, dispatch (with GitHub's validation), runs, jobs, logs."""

from __future__ import annotations

import json
import time
from typing import Any

from clambake_tui.sandbox.emulator.actions import (
    DOC_DISPATCH,
    DOC_RUNS,
    LOG_LINK_SECONDS,
    MAX_INPUTS,
    Actions,
)
from clambake_tui.sandbox.emulator.errors import ApiError, not_found
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.payloads import now_iso
from clambake_tui.sandbox.emulator.store import JSON, RepoState
from clambake_tui.sandbox.emulator.workflows import parse_workflow

__all__ = ["register"]


def register(router: Router, actions: Actions) -> None:
    r = "/repos/{owner}/{repo}/actions"
    add = router.add
    add("GET", f"{r}/workflows", lambda req: _list_workflows(req, actions))
    add("GET", f"{r}/workflows/{{workflow}}", lambda req: _get_workflow(req, actions))
    add("POST", f"{r}/workflows/{{workflow}}/dispatches", lambda req: _dispatch(req, actions))
    add("PUT", f"{r}/workflows/{{workflow}}/enable", lambda req: _set_state(req, actions, "active"))
    add(
        "PUT",
        f"{r}/workflows/{{workflow}}/disable",
        lambda req: _set_state(req, actions, "disabled_manually"),
    )
    add(
        "GET",
        f"{r}/workflows/{{workflow}}/runs",
        lambda req: _list_runs(req, actions, by_workflow=True),
    )
    add("GET", f"{r}/runs", lambda req: _list_runs(req, actions, by_workflow=False))
    add("GET", f"{r}/runs/{{run_id}}", lambda req: _get_run(req, actions))
    add("DELETE", f"{r}/runs/{{run_id}}", lambda req: _delete_run(req, actions))
    add("GET", f"{r}/runs/{{run_id}}/attempts/{{attempt}}", lambda req: _get_attempt(req, actions))
    add("GET", f"{r}/runs/{{run_id}}/jobs", lambda req: _list_jobs(req, actions, attempt=None))
    add(
        "GET",
        f"{r}/runs/{{run_id}}/attempts/{{attempt}}/jobs",
        lambda req: _list_jobs(req, actions, attempt=req.int_param("attempt")),
    )
    add("GET", f"{r}/runs/{{run_id}}/logs", lambda req: _run_logs(req, actions, attempt=None))
    add(
        "GET",
        f"{r}/runs/{{run_id}}/attempts/{{attempt}}/logs",
        lambda req: _run_logs(req, actions, attempt=req.int_param("attempt")),
    )
    add("POST", f"{r}/runs/{{run_id}}/cancel", lambda req: _cancel(req, actions))
    add("POST", f"{r}/runs/{{run_id}}/force-cancel", lambda req: _cancel(req, actions))
    add("POST", f"{r}/runs/{{run_id}}/rerun", lambda req: _rerun(req, actions, failed_only=False))
    add(
        "POST",
        f"{r}/runs/{{run_id}}/rerun-failed-jobs",
        lambda req: _rerun(req, actions, failed_only=True),
    )
    add("GET", f"{r}/jobs/{{job_id}}", lambda req: _get_job(req, actions))
    add("GET", f"{r}/jobs/{{job_id}}/logs", lambda req: _job_logs(req, actions))
    add("POST", f"{r}/jobs/{{job_id}}/rerun", lambda req: _rerun_job(req, actions))


def _list_workflows(req: Request, actions: Actions) -> Response:
    repo = req.repo
    files = actions.workflow_files(repo)
    items = [
        actions.render_workflow(repo, actions.workflow_record(repo, wf.path), wf) for wf in files
    ]
    return req.paginate(items, wrap="workflows")


def _get_workflow(req: Request, actions: Actions) -> Response:
    repo = req.repo
    record, wf = actions.find_workflow(repo, req.params["workflow"])
    return Response(200, actions.render_workflow(repo, record, wf))


def _set_state(req: Request, actions: Actions, state: str) -> Response:
    req.require_login()
    record, _ = actions.find_workflow(req.repo, req.params["workflow"])
    record["state"] = state
    record["updated_at"] = now_iso()
    return Response(204)


def _dispatch(req: Request, actions: Actions) -> Response:
    login = req.require_login()
    data = req.json()
    repo = req.repo
    record, wf = actions.find_workflow(repo, req.params["workflow"])
    if record.get("state", "active") != "active":
        raise ApiError(
            422,
            "Cannot trigger a 'workflow_dispatch' on a disabled workflow",
            documentation_url=DOC_DISPATCH,
        )
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        raise ApiError(
            422, 'Invalid request.\n\n"ref" wasn\'t supplied.', documentation_url=DOC_DISPATCH
        )
    found = repo.git.resolve_branch_or_tag(ref)
    if found is None:
        raise ApiError(422, f"No ref found for: {ref}", documentation_url=DOC_DISPATCH)
    branch, sha = found
    # The run uses the workflow file as it is at the dispatched ref.
    text = repo.git.read_file(sha, wf.path)
    at_ref = parse_workflow(wf.path, text) if text is not None else wf
    if not at_ref.dispatchable:
        raise ApiError(
            422,
            "Workflow does not have 'workflow_dispatch' trigger",
            documentation_url=DOC_DISPATCH,
        )
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ApiError(
            422,
            "Invalid request.\n\nFor 'properties/inputs', \"" + str(inputs) + '" is not an object.',
            documentation_url=DOC_DISPATCH,
        )
    if len(inputs) > MAX_INPUTS:
        raise ApiError(
            422,
            f"you may only define up to {MAX_INPUTS} `inputs` for a workflow_dispatch event",
            documentation_url=DOC_DISPATCH,
        )
    for name, value in inputs.items():
        if not isinstance(value, str):
            # Input values travel as strings ("true", not true), whatever the input's type.
            raise ApiError(
                422,
                f"Invalid request.\n\nFor 'properties/{name}', {_ruby(value)} is not a string.",
                documentation_url=DOC_DISPATCH,
            )
    declared = at_ref.inputs
    unexpected = [k for k in inputs if k not in declared]
    if unexpected:
        raise ApiError(
            422,
            f"Unexpected inputs provided: {json.dumps(unexpected)}",
            documentation_url=DOC_DISPATCH,
        )
    resolved: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in inputs:
            value = inputs[name]
            if (
                spec.get("type") == "choice"
                and spec.get("options")
                and str(value) not in [str(o) for o in spec["options"]]
            ):
                raise ApiError(
                    422,
                    f"Provided value '{value}' for input '{name}' not in the list of allowed values",
                    documentation_url=DOC_DISPATCH,
                )
            if spec.get("type") == "boolean" and value not in ("true", "false"):
                raise ApiError(
                    422,
                    f"Provided value '{value}' for input '{name}' not in the list of allowed values",
                    documentation_url=DOC_DISPATCH,
                )
            resolved[name] = value
        elif "default" in spec:
            resolved[name] = _input_string(spec["default"])
        elif spec.get("required"):
            raise ApiError(
                422, f"Required input '{name}' not provided", documentation_url=DOC_DISPATCH
            )
    run = actions.create_run(
        repo,
        record,
        at_ref,
        event="workflow_dispatch",
        branch=branch,
        sha=sha,
        inputs=resolved,
        actor=login,
    )
    wants_details = (
        data.get("return_run_details") is True
        or req.headers.get("x-github-api-version") == "2026-03-10"
    )
    # An older GitHub Enterprise Server knows nothing of run details: 204 whatever was asked.
    if wants_details and actions.run_details:
        return Response(
            200,
            {
                "workflow_run_id": run["id"],
                "run_url": f"{req.urls.api}/repos/{repo.full_name}/actions/runs/{run['id']}",
                "html_url": f"{req.urls.web}/{repo.full_name}/actions/runs/{run['id']}",
            },
        )
    return Response(204)


def _ruby(value: Any) -> str:
    """A JSON value as GitHub's validation messages spell it."""
    if value is None:
        return "nil"
    return json.dumps(value)


def _input_string(value: Any) -> str:
    """Inputs as the run's event payload holds them: strings, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches_created(created: str, spec: str) -> bool:
    """GitHub's date search syntax: >=X, <=X, >X, <X, X..Y, or a date prefix."""
    if ".." in spec:
        low, high = spec.split("..", 1)
        return (low in ("*", "") or created >= _norm(low)) and (
            high in ("*", "") or created <= _norm(high, end=True)
        )
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            value = _norm(spec[len(op) :], end=op in ("<=", ">"))
            return {
                ">=": created >= value,
                "<=": created <= value,
                ">": created > value,
                "<": created < value,
            }[op]
    return created.startswith(spec)


def _norm(value: str, end: bool = False) -> str:
    value = value.strip().replace("+00:00", "Z")
    if len(value) == 10:  # a bare date
        return value + ("T23:59:59Z" if end else "T00:00:00Z")
    return value


_STATUSES = ("queued", "in_progress", "completed", "requested", "waiting", "pending")


def _list_runs(req: Request, actions: Actions, *, by_workflow: bool) -> Response:
    repo = req.repo
    q = req.query
    workflow_id = None
    if by_workflow:
        workflow_id = actions.find_workflow(repo, req.params["workflow"])[0]["id"]
    runs = []
    now = time.time()
    for run in repo.runs.values():
        if run.get("listed_after", 0) > now:
            continue
        if workflow_id is not None and run["workflow_id"] != workflow_id:
            continue
        if q.get("branch") and run["head_branch"] != q["branch"]:
            continue
        if q.get("event") and run["event"] != q["event"]:
            continue
        if q.get("actor") and run["actor"].lower() != q["actor"].lower():
            continue
        if q.get("head_sha") and run["head_sha"] != q["head_sha"]:
            continue
        status = q.get("status")
        if status and (
            run["status"] != status if status in _STATUSES else run["conclusion"] != status
        ):
            continue
        if q.get("created") and not _matches_created(run["created_at"], q["created"]):
            continue
        runs.append(run)
    runs.sort(key=lambda x: x["id"], reverse=True)
    return req.paginate([actions.render_run(repo, run) for run in runs], wrap="workflow_runs")


def _run(req: Request) -> tuple[RepoState, JSON]:
    repo = req.repo
    run = repo.runs.get(req.int_param("run_id"))
    if run is None:
        raise not_found(f"{DOC_RUNS}#get-a-workflow-run")
    return repo, run


def _get_run(req: Request, actions: Actions) -> Response:
    repo, run = _run(req)
    return Response(200, actions.render_run(repo, run))


def _delete_run(req: Request, actions: Actions) -> Response:
    req.require_login()
    repo, run = _run(req)
    if run["status"] != "completed":
        raise ApiError(403, "Cannot delete a workflow run that is not completed.")
    del repo.runs[run["id"]]
    return Response(204)


def _attempt(run: JSON, n: int) -> JSON | None:
    if n == run["run_attempt"]:
        return None
    for past in run["attempts"]:
        if past["run_attempt"] == n:
            return dict(past)
    raise not_found()


def _get_attempt(req: Request, actions: Actions) -> Response:
    repo, run = _run(req)
    attempt = _attempt(run, req.int_param("attempt"))
    return Response(200, actions.render_run(repo, run, attempt))


def _list_jobs(req: Request, actions: Actions, *, attempt: int | None) -> Response:
    repo, run = _run(req)
    if attempt is not None:
        _attempt(run, attempt)
        jobs = [j for j in run["jobs"] if j["run_attempt"] == attempt]
    elif req.query.get("filter", "latest") == "all":
        jobs = list(run["jobs"])
    else:
        jobs = [j for j in run["jobs"] if j["run_attempt"] == run["run_attempt"]]
    return req.paginate([actions.render_job(repo, run, j) for j in jobs], wrap="jobs")


def _run_logs(req: Request, actions: Actions, *, attempt: int | None) -> Response:
    _, run = _run(req)
    n = attempt or run["run_attempt"]
    view = _attempt(run, n) or run
    if view["status"] != "completed":
        # Logs of a run still going are not there to download yet.
        raise not_found(
            "https://docs.github.com/rest/actions/workflow-runs#download-workflow-run-logs"
        )
    key = actions.api.downloads.put(actions.logs_zip(run, n), "application/zip", LOG_LINK_SECONDS)
    location = f"{req.urls.api}/_blobs/{key}/logs_{run['id']}.zip"
    return Response(302, None, {"Location": location})


def _job(req: Request) -> tuple[RepoState, JSON, JSON]:
    repo = req.repo
    job_id = req.int_param("job_id")
    for run in repo.runs.values():
        for job in run["jobs"]:
            if job["id"] == job_id:
                return repo, run, job
    raise not_found(
        "https://docs.github.com/rest/actions/workflow-jobs#get-a-job-for-a-workflow-run"
    )


def _get_job(req: Request, actions: Actions) -> Response:
    repo, run, job = _job(req)
    return Response(200, actions.render_job(repo, run, job))


def _job_logs(req: Request, actions: Actions) -> Response:
    _, _, job = _job(req)
    if job["status"] != "completed":
        raise not_found(
            "https://docs.github.com/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run"
        )
    text = actions.job_log_text(job).encode()
    key = actions.api.downloads.put(text, "text/plain; charset=utf-8", LOG_LINK_SECONDS)
    return Response(302, None, {"Location": f"{req.urls.api}/_blobs/{key}/job-logs.txt"})


def _cancel(req: Request, actions: Actions) -> Response:
    req.require_login()
    _, run = _run(req)
    actions.cancel(run)
    return Response(202, {})


def _rerun(req: Request, actions: Actions, *, failed_only: bool) -> Response:
    req.require_login()
    repo, run = _run(req)
    if failed_only and run["status"] == "completed" and run["conclusion"] == "success":
        raise ApiError(403, "This workflow run cannot be retried")
    actions.rerun(repo, run, failed_only=failed_only)
    return Response(201, {})


def _rerun_job(req: Request, actions: Actions) -> Response:
    req.require_login()
    repo, run, job = _job(req)
    if job["run_attempt"] != run["run_attempt"]:
        raise ApiError(403, "This job cannot be retried")
    actions.rerun(repo, run, only_job=job["id"])
    return Response(201, {})
