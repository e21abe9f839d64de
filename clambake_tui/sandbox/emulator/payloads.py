"""GitHub's JSON shapes: users, repositories, labels, issues, pulls, refs, commits, runs, jobs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from clambake_tui.sandbox.emulator.gitrepo import CommitInfo

__all__ = [
    "iso",
    "now_iso",
    "node_id",
    "user_payload",
    "repo_payload",
    "label_payload",
    "commit_payload",
    "simple_commit_payload",
    "ref_payload",
]

JSON = dict[str, Any]


def iso(moment: datetime) -> str:
    """GitHub's timestamp form: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def node_id(kind: str, number: int) -> str:
    """An opaque global id in the shape of GitHub's (`I_kwDO...`)."""
    return kind + "_kwDO" + base64.b64encode(f"{kind}{number}".encode()).decode().rstrip("=")


def user_payload(api: str, web: str, login: str, user_id: int, kind: str = "User") -> JSON:
    u = f"{api}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": node_id("U", user_id),
        "avatar_url": f"{web}/avatars/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": u,
        "html_url": f"{web}/{login}",
        "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos",
        "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def repo_payload(
    api: str,
    web: str,
    *,
    repo_id: int,
    owner: JSON,
    name: str,
    default_branch: str,
    created_at: str,
    pushed_at: str,
    open_issues: int,
    full: bool = True,
) -> JSON:
    """The repository object; `full=False` gives the minimal form nested in runs and pulls."""
    full_name = f"{owner['login']}/{name}"
    r = f"{api}/repos/{full_name}"
    host = web.split("://", 1)[-1]
    body: JSON = {
        "id": repo_id,
        "node_id": node_id("R", repo_id),
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": owner,
        "html_url": f"{web}/{full_name}",
        "description": None,
        "fork": False,
        "url": r,
        "forks_url": f"{r}/forks",
        "keys_url": f"{r}/keys{{/key_id}}",
        "collaborators_url": f"{r}/collaborators{{/collaborator}}",
        "teams_url": f"{r}/teams",
        "hooks_url": f"{r}/hooks",
        "issue_events_url": f"{r}/issues/events{{/number}}",
        "events_url": f"{r}/events",
        "assignees_url": f"{r}/assignees{{/user}}",
        "branches_url": f"{r}/branches{{/branch}}",
        "tags_url": f"{r}/tags",
        "blobs_url": f"{r}/git/blobs{{/sha}}",
        "git_tags_url": f"{r}/git/tags{{/sha}}",
        "git_refs_url": f"{r}/git/refs{{/sha}}",
        "trees_url": f"{r}/git/trees{{/sha}}",
        "statuses_url": f"{r}/statuses/{{sha}}",
        "languages_url": f"{r}/languages",
        "stargazers_url": f"{r}/stargazers",
        "contributors_url": f"{r}/contributors",
        "subscribers_url": f"{r}/subscribers",
        "subscription_url": f"{r}/subscription",
        "commits_url": f"{r}/commits{{/sha}}",
        "git_commits_url": f"{r}/git/commits{{/sha}}",
        "comments_url": f"{r}/comments{{/number}}",
        "issue_comment_url": f"{r}/issues/comments{{/number}}",
        "contents_url": f"{r}/contents/{{+path}}",
        "compare_url": f"{r}/compare/{{base}}...{{head}}",
        "merges_url": f"{r}/merges",
        "archive_url": f"{r}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{r}/downloads",
        "issues_url": f"{r}/issues{{/number}}",
        "pulls_url": f"{r}/pulls{{/number}}",
        "milestones_url": f"{r}/milestones{{/number}}",
        "notifications_url": f"{r}/notifications{{?since,all,participating}}",
        "labels_url": f"{r}/labels{{/name}}",
        "releases_url": f"{r}/releases{{/id}}",
        "deployments_url": f"{r}/deployments",
    }
    if not full:
        return body
    body.update(
        {
            "created_at": created_at,
            "updated_at": pushed_at,
            "pushed_at": pushed_at,
            "git_url": f"git://{host}/{full_name}.git",
            "ssh_url": f"git@{host}:{full_name}.git",
            "clone_url": f"{web}/{full_name}.git",
            "svn_url": f"{web}/{full_name}",
            "homepage": None,
            "size": 1,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": default_branch,
            "permissions": {
                "admin": True,
                "maintain": True,
                "push": True,
                "triage": True,
                "pull": True,
            },
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
            "network_count": 0,
            "subscribers_count": 0,
        }
    )
    return body


def label_payload(api: str, full_name: str, label_id: int, label: JSON) -> JSON:
    from urllib.parse import quote

    return {
        "id": label_id,
        "node_id": node_id("LA", label_id),
        "url": f"{api}/repos/{full_name}/labels/{quote(label['name'], safe='')}",
        "name": label["name"],
        "color": label["color"],
        "default": label.get("default", False),
        "description": label.get("description"),
        # In GitHub's current schema; never set here (nothing archives labels).
        "archived_at": None,
        "archived_by": None,
    }


def _git_person(name: str, email: str, date: str) -> JSON:
    return {"name": name, "email": email, "date": _z(date)}


def _z(date: str) -> str:
    """git's ISO dates carry an offset; GitHub's are UTC with `Z`."""
    try:
        return iso(datetime.fromisoformat(date))
    except ValueError:
        return date


def commit_payload(api: str, web: str, full_name: str, c: CommitInfo) -> JSON:
    r = f"{api}/repos/{full_name}"
    return {
        "sha": c.sha,
        "node_id": node_id("C", int(c.sha[:8], 16)),
        "commit": {
            "author": _git_person(c.author_name, c.author_email, c.author_date),
            "committer": _git_person(c.committer_name, c.committer_email, c.committer_date),
            "message": c.message,
            "tree": {"sha": c.tree, "url": f"{r}/git/trees/{c.tree}"},
            "url": f"{r}/git/commits/{c.sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "url": f"{r}/commits/{c.sha}",
        "html_url": f"{web}/{full_name}/commit/{c.sha}",
        "comments_url": f"{r}/commits/{c.sha}/comments",
        "author": None,
        "committer": None,
        "parents": [
            {"sha": p, "url": f"{r}/commits/{p}", "html_url": f"{web}/{full_name}/commit/{p}"}
            for p in c.parents
        ],
    }


def simple_commit_payload(c: CommitInfo) -> JSON:
    """The `head_commit` of a workflow run."""
    return {
        "id": c.sha,
        "tree_id": c.tree,
        "message": c.message,
        "timestamp": _z(c.committer_date),
        "author": {"name": c.author_name, "email": c.author_email},
        "committer": {"name": c.committer_name, "email": c.committer_email},
    }


def ref_payload(api: str, full_name: str, ref: str, sha: str) -> JSON:
    return {
        "ref": ref,
        "node_id": node_id("REF", int(sha[:8], 16)),
        "url": f"{api}/repos/{full_name}/git/{ref}",
        "object": {
            "sha": sha,
            "type": "commit",
            "url": f"{api}/repos/{full_name}/git/commits/{sha}",
        },
    }
