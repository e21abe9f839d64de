"""Routes for pull requests: list, get, create, update, merge (a real merge in the bare repo)."""

from __future__ import annotations

import re

from clambake_tui.sandbox.emulator.errors import ApiError, not_found, validation_failed
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.payloads import now_iso
from clambake_tui.sandbox.emulator.store import JSON, RepoState, Store

__all__ = ["register", "create_pull"]

DOC_PULLS = "https://docs.github.com/rest/pulls/pulls"


def register(router: Router) -> None:
    r = "/repos/{owner}/{repo}"
    add = router.add
    add("GET", f"{r}/pulls", _list_pulls)
    add("POST", f"{r}/pulls", _create_pull)
    add("GET", f"{r}/pulls/{{number}}", _get_pull)
    add("PATCH", f"{r}/pulls/{{number}}", _update_pull)
    add("PUT", f"{r}/pulls/{{number}}/merge", _merge_pull)
    add("GET", f"{r}/pulls/{{number}}/merge", _is_merged)


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


def _render_pull(
    req: Request, repo: RepoState, issue: JSON, *, full: bool, computing: bool = False
) -> JSON:
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
    # A just-opened pull request answers mergeable: null while GitHub computes it.
    if issue["state"] == "open" and not computing:
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
    login = req.require_login()
    data = req.json()
    repo = req.repo
    for name in ("head", "base"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise validation_failed("PullRequest", "missing_field", name)
    if not data.get("title") and not data.get("issue"):
        raise validation_failed("PullRequest", "missing_field", "title")
    issue = create_pull(
        req.store,
        repo,
        head=data["head"],
        base=data["base"],
        title=str(data.get("title") or data["head"]),
        body=data.get("body"),
        draft=bool(data.get("draft", False)),
        user=login,
    )
    out = _render_pull(req, repo, issue, full=True, computing=True)
    return Response(201, out, {"Location": out["url"]})


def create_pull(
    store: Store,
    repo: RepoState,
    *,
    head: str,
    base: str,
    title: str,
    body: str | None,
    draft: bool = False,
    user: str | None = None,
) -> JSON:
    """Open a pull request (its issue record), with the checks and 422s GitHub applies."""
    owner, _, head_ref = head.partition(":")
    if not head_ref:
        owner, head_ref = repo.owner, head
    git = repo.git
    head_sha = git.branch_sha(head_ref) if owner.lower() == repo.owner.lower() else None
    if head_sha is None:
        raise validation_failed("PullRequest", "invalid", "head")
    base_sha = git.branch_sha(base)
    if base_sha is None:
        raise validation_failed("PullRequest", "invalid", "base")
    for other in repo.issues.values():
        pull = other.get("pull")
        if (
            pull
            and other["state"] == "open"
            and pull["head_ref"] == head_ref
            and pull["base_ref"] == base
        ):
            raise validation_failed(
                "PullRequest",
                "custom",
                message=f"A pull request already exists for {repo.owner}:{head_ref}.",
            )
    if git.count_commits(base_sha, head_sha) == 0:
        raise validation_failed(
            "PullRequest", "custom", message=f"No commits between {base} and {head_ref}"
        )
    record = {
        "id": store.new_id(),
        "head_ref": head_ref,
        "base_ref": base,
        "head_sha": head_sha,
        "base_sha": base_sha,
        "draft": draft,
        "merged": False,
        "merged_at": None,
        "merge_commit_sha": None,
        "merged_by": None,
    }
    return store.create_issue(
        repo, title=title, body=body, labels=[], assignees=[], user=user, pull=record
    )


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

    text = f"{pr['title']}\n{pr['body'] or ''}"
    pattern = r"(?i)\b(" + "|".join(_CLOSING_WORDS) + r")\b:?\s+#(\d+)"
    for match in re.finditer(pattern, text):
        target = repo.issues.get(int(match.group(2)))
        if target is not None and target.get("pull") is None and target["state"] == "open":
            req.store.set_state(target, "closed", "completed")
            req.store.touch(target)
