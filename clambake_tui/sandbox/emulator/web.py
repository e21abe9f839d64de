"""Plain web pages behind the emulator's html_url links: an issue, a pull request, a run."""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from clambake_tui.sandbox.emulator.http import Response
from clambake_tui.sandbox.emulator.store import JSON, RepoState, Store

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.actions import Actions

__all__ = ["web_page"]

_PAGE = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/"
    r"(?:(?P<kind>issues|pull)/(?P<number>\d+)|actions/runs/(?P<run>\d+)(?:/job/(?P<job>\d+))?)$"
)


def web_page(path: str, store: Store, actions: Actions) -> Response | None:
    """The page for an html_url of this emulator, or None when `path` is not one."""
    match = _PAGE.match(path)
    if match is None:
        return None
    with store.lock:
        try:
            repo = store.repo(match["owner"], match["repo"])
        except Exception:
            return _html(404, "Not Found", "<p>No such repository.</p>")
        if match["number"]:
            return _issue_page(repo, int(match["number"]))
        return _run_page(repo, int(match["run"]), actions)


def _html(status: int, title: str, body: str) -> Response:
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f6f8fa;padding:1em;overflow:auto}</style></head>"
        f"<body><p><em>GitHub emulator</em></p><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(status, raw=page.encode(), content_type="text/html; charset=utf-8")


def _issue_page(repo: RepoState, number: int) -> Response:
    issue = repo.issues.get(number)
    if issue is None:
        return _html(404, "Not Found", "<p>No such issue.</p>")
    labels = ", ".join(escape(name) for name in issue["labels"]) or "none"
    parts = [
        f"<p>#{number} · {escape(issue['state'])} · labels: {labels}</p>",
        f"<pre>{escape(issue['body'] or '')}</pre>",
    ]
    pull: JSON | None = issue.get("pull")
    if pull is not None:
        merged = " · merged" if pull.get("merged") else ""
        parts.insert(1, f"<p>{escape(pull['head_ref'])} → {escape(pull['base_ref'])}{merged}</p>")
    for comment in issue["comments"]:
        parts.append(f"<h3>{escape(comment['user'])}</h3><pre>{escape(comment['body'])}</pre>")
    return _html(200, f"{repo.full_name} #{number}: {issue['title']}", "".join(parts))


def _run_page(repo: RepoState, run_id: int, actions: Actions) -> Response:
    run = repo.runs.get(run_id)
    if run is None:
        return _html(404, "Not Found", "<p>No such run.</p>")
    parts = [
        f"<p>{escape(run['event'])} on {escape(run['head_branch'])} · attempt "
        f"{run['run_attempt']} · {escape(run['status'])}"
        f"{' · ' + escape(run['conclusion']) if run['conclusion'] else ''}</p>"
    ]
    for job in run["jobs"]:
        if job["run_attempt"] != run["run_attempt"]:
            continue
        parts.append(
            f"<h2>{escape(job['name'])} · {escape(job['conclusion'] or job['status'])}</h2>"
        )
        parts.append(f"<pre>{escape(actions.job_log_text(job))}</pre>")
    return _html(200, f"{run['name']} #{run['run_number']}", "".join(parts))
