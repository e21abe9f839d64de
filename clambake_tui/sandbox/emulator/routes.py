"""REST routes for the repository, issues, labels, comments, pull requests, branches and refs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clambake_tui.sandbox.emulator.errors import ApiError, not_found, validation_failed
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.payloads import commit_payload, now_iso, ref_payload
from clambake_tui.sandbox.emulator.store import JSON, RepoState

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.server import ApiServer

__all__ = ["register_routes"]

DOC_ISSUES = "https://docs.github.com/rest/issues/issues"
DOC_PULLS = "https://docs.github.com/rest/pulls/pulls"


def register_routes(router: Router, api: ApiServer) -> None:
    r = "/repos/{owner}/{repo}"
    add = router.add
    add("GET", "/rate_limit", lambda req: _rate_limit(req, api))
    add("GET", "/user", _user)
    add(
        "GET",
        "/users/{login}",
        lambda req: Response(200, req.store.user(req.urls, req.params["login"])),
    )
    add("GET", r, _repo)
    # issues
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
    # labels
    add("GET", f"{r}/labels", _list_labels)
    add("POST", f"{r}/labels", _create_label)
    add("GET", f"{r}/labels/{{name+}}", _get_label)
    add("PATCH", f"{r}/labels/{{name+}}", _update_label)
    add("DELETE", f"{r}/labels/{{name+}}", _delete_label)
    # pulls
    add("GET", f"{r}/pulls", _list_pulls)
    add("POST", f"{r}/pulls", _create_pull)
    add("GET", f"{r}/pulls/{{number}}", _get_pull)
    add("PATCH", f"{r}/pulls/{{number}}", _update_pull)
    add("PUT", f"{r}/pulls/{{number}}/merge", _merge_pull)
    add("GET", f"{r}/pulls/{{number}}/merge", _is_merged)
    # branches and refs
    add("GET", f"{r}/branches", _list_branches)
    add("GET", f"{r}/branches/{{branch+}}", _get_branch)
    add("GET", f"{r}/git/ref/{{ref+}}", _get_ref)
    add("GET", f"{r}/git/refs", _list_refs)
    add("GET", f"{r}/git/refs/{{ref+}}", _get_refs)
    add("GET", f"{r}/git/matching-refs/{{ref+}}", _matching_refs)
    add("POST", f"{r}/git/refs", _create_ref)
    add("PATCH", f"{r}/git/refs/{{ref+}}", _update_ref)
    add("DELETE", f"{r}/git/refs/{{ref+}}", _delete_ref)
    add("GET", f"{r}/commits/{{ref+}}", _get_commit)


# account --------------------------------------------------------------------------------------
def _rate_limit(req: Request, api: ApiServer) -> Response:
    core = api.budget(req.identity).as_json()
    reset = core["reset"]
    limit = core["limit"]
    small = 30 if req.login else 10

    def fresh(n: int) -> dict[str, int]:
        return {"limit": n, "used": 0, "remaining": n, "reset": reset}

    resources = {
        "core": {**core, "resource": "core"},
        "search": {**fresh(small), "resource": "search"},
        "graphql": {**fresh(limit if req.login else 0), "resource": "graphql"},
        "integration_manifest": {**fresh(5000), "resource": "integration_manifest"},
        "source_import": {**fresh(100), "resource": "source_import"},
        "code_scanning_upload": {**fresh(limit), "resource": "code_scanning_upload"},
        "actions_runner_registration": {**fresh(10000), "resource": "actions_runner_registration"},
        "scim": {**fresh(15000), "resource": "scim"},
        "dependency_snapshots": {**fresh(100), "resource": "dependency_snapshots"},
        "code_search": {**fresh(10), "resource": "code_search"},
    }
    for body in resources.values():
        body.pop("resource")
    return Response(200, {"resources": resources, "rate": dict(core)})


def _user(req: Request) -> Response:
    login = req.require_login()
    body = req.store.user(req.urls, login)
    body.update(
        {
            "name": "Sandbox Operator",
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "notification_email": None,
            "public_repos": len(req.store.repos),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
        }
    )
    return Response(200, body)


def _repo(req: Request) -> Response:
    return Response(200, req.store.render_repo(req.urls, req.repo))


# issues ---------------------------------------------------------------------------------------
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


# labels ---------------------------------------------------------------------------------------
def _list_labels(req: Request) -> Response:
    repo = req.repo
    labels = sorted(repo.labels.values(), key=lambda lb: lb["name"].lower())
    return req.paginate([req.store.render_label(req.urls, repo, lb) for lb in labels])


def _color(value: Any) -> str:
    color = str(value or "ededed").removeprefix("#")
    if len(color) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in color):
        raise validation_failed("Label", "invalid", "color")
    return color.lower()


def _create_label(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo = req.repo
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation_failed("Label", "missing_field", "name")
    if repo.label(name) is not None:
        raise validation_failed("Label", "already_exists", "name")
    record = {
        "id": req.store.new_id(),
        "name": name,
        "color": _color(data.get("color")),
        "description": data.get("description"),
    }
    repo.labels[name.lower()] = record
    out = req.store.render_label(req.urls, repo, record)
    return Response(201, out, {"Location": out["url"]})


def _label(req: Request) -> tuple[RepoState, JSON]:
    repo = req.repo
    label = repo.label(req.params["name"])
    if label is None:
        raise not_found("https://docs.github.com/rest/issues/labels#get-a-label")
    return repo, label


def _get_label(req: Request) -> Response:
    repo, label = _label(req)
    return Response(200, req.store.render_label(req.urls, repo, label))


def _update_label(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo, label = _label(req)
    if "new_name" in data and isinstance(data["new_name"], str):
        old = label["name"]
        del repo.labels[old.lower()]
        label["name"] = data["new_name"]
        repo.labels[label["name"].lower()] = label
        for issue in repo.issues.values():
            issue["labels"] = [label["name"] if n == old else n for n in issue["labels"]]
    if "color" in data:
        label["color"] = _color(data["color"])
    if "description" in data:
        label["description"] = data["description"]
    return Response(200, req.store.render_label(req.urls, repo, label))


def _delete_label(req: Request) -> Response:
    req.require_login()
    repo, label = _label(req)
    del repo.labels[label["name"].lower()]
    for issue in repo.issues.values():
        issue["labels"] = [n for n in issue["labels"] if n.lower() != label["name"].lower()]
    return Response(204)


# pull requests --------------------------------------------------------------------------------
def _pull(req: Request) -> tuple[RepoState, JSON]:
    repo = req.repo
    issue = repo.issues.get(req.int_param("number"))
    if issue is None or issue.get("pull") is None:
        raise not_found(f"{DOC_PULLS}#get-a-pull-request")
    return repo, issue


def _pull_shas(repo: RepoState, pull: JSON) -> tuple[str, str]:
    """Live head and base shas (branches move as agents push); merged pulls keep theirs."""
    if pull.get("merged") or pull.get("closed_head_sha"):
        return pull["head_sha"], pull["base_sha"]
    git = repo.git
    head = git.branch_sha(pull["head_ref"]) or pull["head_sha"]
    base = git.branch_sha(pull["base_ref"]) or pull["base_sha"]
    return head, base


def _branch_side(req: Request, repo: RepoState, ref: str, sha: str) -> JSON:
    owner = req.store.user(req.urls, repo.owner)
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": owner,
        "repo": req.store.render_repo(req.urls, repo),
    }


def _render_pull(req: Request, repo: RepoState, issue: JSON, *, full: bool) -> JSON:
    store, urls = req.store, req.urls
    pull = issue["pull"]
    number = issue["number"]
    r = f"{urls.api}/repos/{repo.full_name}"
    web = f"{urls.web}/{repo.full_name}/pull/{number}"
    head_sha, base_sha = _pull_shas(repo, pull)
    assignees = [store.user(urls, a) for a in issue["assignees"]]
    body: JSON = {
        "url": f"{r}/pulls/{number}",
        "id": pull["id"],
        "node_id": f"PR_kwDO{pull['id']}",
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": f"{r}/issues/{number}",
        "number": number,
        "state": issue["state"],
        "locked": False,
        "title": issue["title"],
        "user": store.user(urls, issue["user"]),
        "body": issue["body"],
        "created_at": issue["created_at"],
        "updated_at": issue["updated_at"],
        "closed_at": issue["closed_at"],
        "merged_at": pull.get("merged_at"),
        "merge_commit_sha": pull.get("merge_commit_sha"),
        "assignee": assignees[0] if assignees else None,
        "assignees": assignees,
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": store.render_issue_labels(urls, repo, issue),
        "milestone": None,
        "draft": pull.get("draft", False),
        "commits_url": f"{r}/pulls/{number}/commits",
        "review_comments_url": f"{r}/pulls/{number}/comments",
        "review_comment_url": f"{r}/pulls/comments{{/number}}",
        "comments_url": f"{r}/issues/{number}/comments",
        "statuses_url": f"{r}/statuses/{head_sha}",
        "head": _branch_side(req, repo, pull["head_ref"], head_sha),
        "base": _branch_side(req, repo, pull["base_ref"], base_sha),
        "_links": {
            "self": {"href": f"{r}/pulls/{number}"},
            "html": {"href": web},
            "issue": {"href": f"{r}/issues/{number}"},
            "comments": {"href": f"{r}/issues/{number}/comments"},
            "review_comments": {"href": f"{r}/pulls/{number}/comments"},
            "review_comment": {"href": f"{r}/pulls/comments{{/number}}"},
            "commits": {"href": f"{r}/pulls/{number}/commits"},
            "statuses": {"href": f"{r}/statuses/{head_sha}"},
        },
        "author_association": "OWNER" if issue["user"] == repo.owner else "COLLABORATOR",
        "auto_merge": None,
        "active_lock_reason": None,
    }
    if not full:
        return body
    git = repo.git
    merged = bool(pull.get("merged"))
    mergeable: bool | None = None
    if issue["state"] == "open":
        mergeable = git.merge(base_sha, head_sha, "probe") is not None
    adds, dels, files = git.diff_stats(base_sha, head_sha)
    body.update(
        {
            "merged": merged,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": "unknown"
            if mergeable is None
            else ("clean" if mergeable else "dirty"),
            "merged_by": store.user(urls, pull["merged_by"]) if pull.get("merged_by") else None,
            "comments": len(issue["comments"]),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": git.count_commits(base_sha, head_sha)
            if not merged
            else pull.get("commits", 0),
            "additions": adds,
            "deletions": dels,
            "changed_files": files,
        }
    )
    return body


def _list_pulls(req: Request) -> Response:
    repo = req.repo
    q = req.query
    state = q.get("state", "open")
    head = q.get("head")
    head_ref = None
    if head:
        owner, _, branch = head.partition(":")
        if not branch:
            # GitHub ignores a head filter without the owner: part... and then matches nothing useful.
            owner, branch = repo.owner, head
        if owner.lower() != repo.owner.lower():
            return req.paginate([])
        head_ref = branch
    items = []
    for issue in repo.issues.values():
        pull = issue.get("pull")
        if pull is None:
            continue
        if state != "all" and issue["state"] != state:
            continue
        if head_ref is not None and pull["head_ref"] != head_ref:
            continue
        if q.get("base") and pull["base_ref"] != q["base"]:
            continue
        items.append(issue)
    items.sort(key=lambda i: (i["created_at"], i["number"]))
    if q.get("direction", "desc") != "asc":
        items.reverse()
    return req.paginate([_render_pull(req, repo, i, full=False) for i in items])


def _get_pull(req: Request) -> Response:
    repo, issue = _pull(req)
    return Response(200, _render_pull(req, repo, issue, full=True))


def _create_pull(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo = req.repo
    for name in ("head", "base"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise validation_failed("PullRequest", "missing_field", name)
    if not data.get("title") and not data.get("issue"):
        raise validation_failed("PullRequest", "missing_field", "title")
    owner, _, head_ref = data["head"].partition(":")
    if not head_ref:
        owner, head_ref = repo.owner, data["head"]
    base_ref = data["base"]
    git = repo.git
    head_sha = git.branch_sha(head_ref) if owner.lower() == repo.owner.lower() else None
    if head_sha is None:
        raise validation_failed("PullRequest", "invalid", "head")
    base_sha = git.branch_sha(base_ref)
    if base_sha is None:
        raise validation_failed("PullRequest", "invalid", "base")
    for other in repo.issues.values():
        pull = other.get("pull")
        if (
            pull
            and other["state"] == "open"
            and pull["head_ref"] == head_ref
            and pull["base_ref"] == base_ref
        ):
            raise validation_failed(
                "PullRequest",
                "custom",
                message=f"A pull request already exists for {repo.owner}:{head_ref}.",
            )
    if git.count_commits(base_sha, head_sha) == 0:
        raise validation_failed(
            "PullRequest", "custom", message=f"No commits between {base_ref} and {head_ref}"
        )
    pull = {
        "id": req.store.new_id(),
        "head_ref": head_ref,
        "base_ref": base_ref,
        "head_sha": head_sha,
        "base_sha": base_sha,
        "draft": bool(data.get("draft", False)),
        "merged": False,
        "merged_at": None,
        "merge_commit_sha": None,
        "merged_by": None,
    }
    issue = req.store.create_issue(
        repo,
        title=str(data.get("title") or head_ref),
        body=data.get("body"),
        labels=[],
        assignees=[],
        user=req.login,
        pull=pull,
    )
    out = _render_pull(req, repo, issue, full=True)
    return Response(201, out, {"Location": out["url"]})


def _update_pull(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo, issue = _pull(req)
    pull = issue["pull"]
    if "title" in data and isinstance(data["title"], str):
        issue["title"] = data["title"]
    if "body" in data:
        issue["body"] = data["body"]
    if "base" in data:
        if repo.git.branch_sha(str(data["base"])) is None:
            raise validation_failed("PullRequest", "invalid", "base")
        pull["base_ref"] = data["base"]
    if "state" in data:
        if data["state"] == "closed" and issue["state"] == "open":
            pull["head_sha"], pull["base_sha"] = _pull_shas(repo, pull)
            pull["closed_head_sha"] = pull["head_sha"]
        elif data["state"] == "open":
            pull.pop("closed_head_sha", None)
        req.store.set_state(issue, str(data["state"]))
    req.store.touch(issue)
    return Response(200, _render_pull(req, repo, issue, full=True))


def _is_merged(req: Request) -> Response:
    _, issue = _pull(req)
    if issue["pull"].get("merged"):
        return Response(204)
    raise not_found()


def _merge_pull(req: Request) -> Response:
    login = req.require_login()
    data = req.json()
    repo, issue = _pull(req)
    pull = issue["pull"]
    if pull.get("merged") or issue["state"] != "open":
        raise ApiError(405, "Pull Request is not mergeable")
    head_sha, base_sha = _pull_shas(repo, pull)
    if data.get("sha") and data["sha"] != head_sha:
        raise ApiError(409, "Head branch was modified. Review and try the merge again.")
    method = data.get("merge_method", "merge")
    if method not in ("merge", "squash", "rebase"):
        raise validation_failed("PullRequest", "invalid", "merge_method")
    title = data.get("commit_title") or (
        f"Merge pull request #{issue['number']} from {repo.owner}/{pull['head_ref']}"
        if method == "merge"
        else f"{issue['title']} (#{issue['number']})"
    )
    message = title + ("\n\n" + data["commit_message"] if data.get("commit_message") else "")
    git = repo.git
    merged_sha = git.merge(base_sha, head_sha, message, squash=method != "merge")
    if merged_sha is None:
        raise ApiError(405, "Pull Request is not mergeable")
    git.update_ref(f"refs/heads/{pull['base_ref']}", merged_sha, base_sha)
    pull.update(
        {
            "merged": True,
            "merged_at": now_iso(),
            "merge_commit_sha": merged_sha,
            "merged_by": login,
            "head_sha": head_sha,
            "base_sha": base_sha,
            "commits": git.count_commits(base_sha, head_sha),
        }
    )
    req.store.set_state(issue, "closed")
    if pull["base_ref"] == repo.default_branch:
        _close_referenced_issues(req, repo, issue)
    return Response(
        200, {"sha": merged_sha, "merged": True, "message": "Pull Request successfully merged"}
    )


_CLOSING_WORDS = (
    "close",
    "closes",
    "closed",
    "fix",
    "fixes",
    "fixed",
    "resolve",
    "resolves",
    "resolved",
)


def _close_referenced_issues(req: Request, repo: RepoState, pr: JSON) -> None:
    """`Fixes #N` in a pull request merged into the default branch closes issue N."""
    import re

    text = f"{pr['title']}\n{pr['body'] or ''}"
    pattern = r"(?i)\b(" + "|".join(_CLOSING_WORDS) + r")\b:?\s+#(\d+)"
    for match in re.finditer(pattern, text):
        target = repo.issues.get(int(match.group(2)))
        if target is not None and target.get("pull") is None and target["state"] == "open":
            req.store.set_state(target, "closed", "completed")
            req.store.touch(target)


# branches and refs ----------------------------------------------------------------------------
def _branch_payload(req: Request, repo: RepoState, name: str, sha: str) -> JSON:
    r = f"{req.urls.api}/repos/{repo.full_name}"
    return {
        "name": name,
        "commit": commit_payload(req.urls.api, req.urls.web, repo.full_name, repo.git.commit(sha)),
        "_links": {
            "self": f"{r}/branches/{name}",
            "html": f"{req.urls.web}/{repo.full_name}/tree/{name}",
        },
        "protected": False,
        "protection": {
            "enabled": False,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        "protection_url": f"{r}/branches/{name}/protection",
    }


def _list_branches(req: Request) -> Response:
    repo = req.repo
    r = f"{req.urls.api}/repos/{repo.full_name}"
    items = [
        {"name": name, "commit": {"sha": sha, "url": f"{r}/commits/{sha}"}, "protected": False}
        for name, sha in repo.git.branches()
    ]
    return req.paginate(items)


def _get_branch(req: Request) -> Response:
    repo = req.repo
    name = req.params["branch"]
    sha = repo.git.branch_sha(name)
    if sha is None:
        raise ApiError(
            404,
            "Branch not found",
            documentation_url="https://docs.github.com/rest/branches/branches#get-a-branch",
        )
    return Response(200, _branch_payload(req, repo, name, sha))


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/{ref}"


def _get_ref(req: Request) -> Response:
    repo = req.repo
    full = _full_ref(req.params["ref"])
    for name, sha in repo.git.refs(full):
        if name == full:
            return Response(200, ref_payload(req.urls.api, repo.full_name, name, sha))
    raise not_found("https://docs.github.com/rest/git/refs#get-a-reference")


def _list_refs(req: Request) -> Response:
    repo = req.repo
    return req.paginate(
        [ref_payload(req.urls.api, repo.full_name, n, s) for n, s in repo.git.refs("refs/")]
    )


def _get_refs(req: Request) -> Response:
    """The old form: an exact match answers the ref, a prefix answers the list, else 404."""
    repo = req.repo
    full = _full_ref(req.params["ref"])
    found = repo.git.refs(full)
    for name, sha in found:
        if name == full:
            return Response(200, ref_payload(req.urls.api, repo.full_name, name, sha))
    if not found:
        raise not_found("https://docs.github.com/rest/git/refs#get-a-reference")
    return Response(200, [ref_payload(req.urls.api, repo.full_name, n, s) for n, s in found])


def _matching_refs(req: Request) -> Response:
    repo = req.repo
    prefix = _full_ref(req.params["ref"])
    return Response(
        200, [ref_payload(req.urls.api, repo.full_name, n, s) for n, s in repo.git.refs(prefix)]
    )


def _create_ref(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo = req.repo
    ref, sha = data.get("ref"), data.get("sha")
    if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
        raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
    if not isinstance(sha, str) or repo.git.resolve(sha) is None:
        raise ApiError(422, "Object does not exist")
    if repo.git.resolve(ref) is not None:
        raise ApiError(422, "Reference already exists")
    repo.git.update_ref(ref, sha)
    out = ref_payload(req.urls.api, repo.full_name, ref, sha)
    return Response(201, out, {"Location": out["url"]})


def _update_ref(req: Request) -> Response:
    req.require_login()
    data = req.json()
    repo = req.repo
    full = _full_ref(req.params["ref"])
    old = repo.git.resolve(full)
    if old is None:
        raise ApiError(422, "Reference does not exist")
    sha = data.get("sha")
    if not isinstance(sha, str) or repo.git.resolve(sha) is None:
        raise ApiError(422, "Object does not exist")
    if not data.get("force") and not repo.git.is_ancestor(old, sha):
        raise ApiError(422, "Update is not a fast forward")
    repo.git.update_ref(full, sha)
    return Response(200, ref_payload(req.urls.api, repo.full_name, full, sha))


def _delete_ref(req: Request) -> Response:
    req.require_login()
    repo = req.repo
    full = _full_ref(req.params["ref"])
    if repo.git.resolve(full) is None:
        raise ApiError(422, "Reference does not exist")
    repo.git.delete_ref(full)
    return Response(204)


def _get_commit(req: Request) -> Response:
    repo = req.repo
    sha = repo.git.resolve(req.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {req.params['ref']}")
    return Response(
        200, commit_payload(req.urls.api, req.urls.web, repo.full_name, repo.git.commit(sha))
    )
