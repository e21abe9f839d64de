"""Routes for issues: list, get, create, update; their labels, assignees and comments."""

from __future__ import annotations

from typing import Any

from clambake_tui.sandbox.emulator.errors import ApiError, validation_failed
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.payloads import now_iso
from clambake_tui.sandbox.emulator.store import JSON, RepoState

__all__ = ["register"]

DOC_ISSUES = "https://docs.github.com/rest/issues/issues"


def register(router: Router) -> None:
    r = "/repos/{owner}/{repo}"
    add = router.add
    add("GET", f"{r}/issues", _list_issues)
    add("POST", f"{r}/issues", _create_issue)
    add("GET", f"{r}/issues/{{number}}", _get_issue)
    add("PATCH", f"{r}/issues/{{number}}", _update_issue)
    add("GET", f"{r}/issues/{{number}}/labels", _issue_labels)
    add("POST", f"{r}/issues/{{number}}/labels", _add_labels)
    add("PUT", f"{r}/issues/{{number}}/labels", _set_labels)
    add("DELETE", f"{r}/issues/{{number}}/labels", _clear_labels)
    add("DELETE", f"{r}/issues/{{number}}/labels/{{name+}}", _remove_label)
    add("POST", f"{r}/issues/{{number}}/assignees", _add_assignees)
    add("DELETE", f"{r}/issues/{{number}}/assignees", _remove_assignees)
    add("GET", f"{r}/issues/{{number}}/comments", _list_comments)
    add("POST", f"{r}/issues/{{number}}/comments", _create_comment)


def _issue(req: Request, doc: str = f"{DOC_ISSUES}#get-an-issue") -> tuple[RepoState, JSON]:
    repo = req.repo
    return repo, req.store.issue(repo, req.int_param("number"), doc=doc)


def _list_issues(req: Request) -> Response:
    repo = req.repo
    q = req.query
    state = q.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise validation_failed("Issue", "invalid", "state")
    wanted = [name.strip().lower() for name in q.get("labels", "").split(",") if name.strip()]
    items = []
    for issue in repo.issues.values():
        if state != "all" and issue["state"] != state:
            continue
        have = {name.lower() for name in issue["labels"]}
        if any(name not in have for name in wanted):
            continue
        if "assignee" in q and not _matches_person(q["assignee"], issue["assignees"]):
            continue
        if "creator" in q and issue["user"].lower() != q["creator"].lower():
            continue
        if "since" in q and issue["updated_at"] < q["since"]:
            continue
        items.append(issue)
    key = "updated_at" if q.get("sort") == "updated" else "created_at"
    if q.get("sort") == "comments":
        items.sort(key=lambda i: (len(i["comments"]), i["number"]))
    else:
        items.sort(key=lambda i: (i[key], i["number"]))
    if q.get("direction", "desc") != "asc":
        items.reverse()
    return req.paginate([req.store.render_issue(req.urls, repo, i) for i in items])


def _matches_person(wanted: str, logins: list[str]) -> bool:
    if wanted == "*":
        return bool(logins)
    if wanted == "none":
        return not logins
    return wanted.lower() in (x.lower() for x in logins)


def _string_list(value: Any, resource: str, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | dict) for v in value):
        raise validation_failed(resource, "invalid", field)
    return [v["name"] if isinstance(v, dict) else v for v in value]


def _create_issue(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo = req.repo
    title = data.get("title")
    if title is None or (isinstance(title, str) and not title.strip()):
        raise validation_failed("Issue", "missing_field", "title")
    if not isinstance(title, str | int):
        raise validation_failed("Issue", "invalid", "title")
    issue = req.store.create_issue(
        repo,
        title=str(title),
        body=data.get("body"),
        labels=_string_list(data.get("labels"), "Issue", "labels"),
        assignees=_string_list(data.get("assignees"), "Issue", "assignees")
        + ([data["assignee"]] if isinstance(data.get("assignee"), str) else []),
        user=req.login,
    )
    resp = Response(201, req.store.render_issue(req.urls, repo, issue))
    resp.headers["Location"] = resp.body["url"]
    return resp


def _get_issue(req: Request) -> Response:
    repo, issue = _issue(req)
    return Response(200, req.store.render_issue(req.urls, repo, issue))


def _update_issue(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo, issue = _issue(req, f"{DOC_ISSUES}#update-an-issue")
    if "title" in data:
        if not isinstance(data["title"], str) or not data["title"].strip():
            raise validation_failed("Issue", "missing_field", "title")
        issue["title"] = data["title"]
    if "body" in data:
        issue["body"] = data["body"]
    if "state" in data:
        req.store.set_state(issue, str(data["state"]), data.get("state_reason"))
    if "labels" in data:
        issue["labels"] = []
        req.store.add_labels(repo, issue, _string_list(data["labels"], "Issue", "labels"))
    if "assignees" in data:
        issue["assignees"] = _string_list(data["assignees"], "Issue", "assignees")
    req.store.touch(issue)
    return Response(200, req.store.render_issue(req.urls, repo, issue))


def _issue_labels(req: Request) -> Response:
    repo, issue = _issue(req)
    return req.paginate(req.store.render_issue_labels(req.urls, repo, issue))


def _labels_from_body(req: Request) -> list[str]:
    data = req.json_any()
    if isinstance(data, list):
        return _string_list(data, "Label", "labels")
    if isinstance(data, dict):
        return _string_list(data.get("labels"), "Label", "labels")
    raise ApiError(400, "Body should be a JSON object")


def _add_labels(req: Request) -> Response:
    req.require_login()
    repo, issue = _issue(req, "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue")
    names = _labels_from_body(req)
    if not names:
        raise validation_failed("Label", "missing_field", "labels")
    req.store.add_labels(repo, issue, names)
    return Response(200, req.store.render_issue_labels(req.urls, repo, issue))


def _set_labels(req: Request) -> Response:
    req.require_login()
    repo, issue = _issue(req, "https://docs.github.com/rest/issues/labels#set-labels-for-an-issue")
    names = _labels_from_body(req)
    issue["labels"] = []
    req.store.add_labels(repo, issue, names)
    return Response(200, req.store.render_issue_labels(req.urls, repo, issue))


def _clear_labels(req: Request) -> Response:
    req.require_login()
    _, issue = _issue(req)
    issue["labels"] = []
    req.store.touch(issue)
    return Response(204)


def _remove_label(req: Request) -> Response:
    req.require_login()
    repo, issue = _issue(req)
    req.store.remove_label(repo, issue, req.params["name"])
    return Response(200, req.store.render_issue_labels(req.urls, repo, issue))


def _assignee_list(req: Request) -> list[str]:
    data = req.json()
    return _string_list(data.get("assignees"), "Issue", "assignees")


def _add_assignees(req: Request) -> Response:
    req.require_login()
    repo, issue = _issue(req)
    for login in _assignee_list(req):
        if (
            login.lower() not in (a.lower() for a in issue["assignees"])
            and len(issue["assignees"]) < 10
        ):
            issue["assignees"].append(login)
    req.store.touch(issue)
    return Response(201, req.store.render_issue(req.urls, repo, issue))


def _remove_assignees(req: Request) -> Response:
    req.require_login()
    repo, issue = _issue(req)
    gone = {login.lower() for login in _assignee_list(req)}
    issue["assignees"] = [a for a in issue["assignees"] if a.lower() not in gone]
    req.store.touch(issue)
    return Response(200, req.store.render_issue(req.urls, repo, issue))


def _list_comments(req: Request) -> Response:
    repo, issue = _issue(req)
    since = req.query.get("since")
    comments = [c for c in issue["comments"] if since is None or c["updated_at"] >= since]
    return req.paginate([req.store.render_comment(req.urls, repo, issue, c) for c in comments])


def _create_comment(req: Request) -> Response:
    login = req.require_login()
    data = req.json()
    repo, issue = _issue(req)
    body = data.get("body")
    if not isinstance(body, str) or not body:
        raise validation_failed("IssueComment", "missing_field", "body")
    now = now_iso()
    comment = {
        "id": req.store.new_id(),
        "body": body,
        "user": login,
        "created_at": now,
        "updated_at": now,
    }
    issue["comments"].append(comment)
    req.store.touch(issue)
    out = req.store.render_comment(req.urls, repo, issue, comment)
    return Response(201, out, {"Location": out["url"]})
