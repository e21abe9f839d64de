"""The emulator's state: repositories, issues, labels, pulls and runs, kept as GitHub-shaped records.

Records are plain JSON-able dicts (so the whole state can be written to one JSON file); the
`render_*` functions turn a record into the exact JSON GitHub answers with.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from clambake_tui.atomic import atomic_write_text
from clambake_tui.sandbox.emulator.errors import ApiError, not_found, validation_failed
from clambake_tui.sandbox.emulator.gitrepo import BareRepo
from clambake_tui.sandbox.emulator.payloads import (
    label_payload,
    node_id,
    now_iso,
    repo_payload,
    user_payload,
)

__all__ = ["Store", "RepoState", "Urls", "STATE_VERSION"]

JSON = dict[str, Any]
STATE_VERSION = 1

# GitHub's colours for the labels a new repository starts without; new labels get this grey.
DEFAULT_LABEL_COLOR = "ededed"


@dataclass(frozen=True, slots=True)
class Urls:
    """Where the API answers and what html_url fields point at."""

    api: str
    web: str


@dataclass
class RepoState:
    id: int
    owner: str
    name: str
    bare_path: str
    default_branch: str
    created_at: str
    issues: dict[int, JSON] = field(default_factory=dict)
    labels: dict[str, JSON] = field(default_factory=dict)
    next_number: int = 1
    workflows: dict[str, JSON] = field(default_factory=dict)
    runs: dict[int, JSON] = field(default_factory=dict)
    run_numbers: dict[str, int] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def git(self) -> BareRepo:
        return BareRepo(Path(self.bare_path))

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "owner": self.owner,
            "name": self.name,
            "bare_path": self.bare_path,
            "default_branch": self.default_branch,
            "created_at": self.created_at,
            "issues": list(self.issues.values()),
            "labels": list(self.labels.values()),
            "next_number": self.next_number,
            "workflows": list(self.workflows.values()),
            "runs": list(self.runs.values()),
            "run_numbers": self.run_numbers,
        }

    @classmethod
    def from_json(cls, data: JSON) -> RepoState:
        return cls(
            id=data["id"],
            owner=data["owner"],
            name=data["name"],
            bare_path=data["bare_path"],
            default_branch=data.get("default_branch", "main"),
            created_at=data.get("created_at") or now_iso(),
            issues={i["number"]: i for i in data.get("issues", [])},
            labels={lb["name"].lower(): lb for lb in data.get("labels", [])},
            next_number=data.get("next_number", 1),
            workflows={w["path"]: w for w in data.get("workflows", [])},
            runs={r["id"]: r for r in data.get("runs", [])},
            run_numbers=dict(data.get("run_numbers", {})),
        )

    # labels -------------------------------------------------------------------------------
    def label(self, name: str) -> JSON | None:
        return self.labels.get(name.lower())

    def ensure_label(self, store: Store, name: str, color: str = DEFAULT_LABEL_COLOR) -> JSON:
        """GitHub creates unknown labels named in an issue update (for users with push access)."""
        existing = self.label(name)
        if existing is not None:
            return existing
        record = {"id": store.new_id(), "name": name, "color": color, "description": None}
        self.labels[name.lower()] = record
        return record

    def open_issue_count(self) -> int:
        return sum(1 for i in self.issues.values() if i["state"] == "open")


class Store:
    """Everything the emulator knows, behind one re-entrant lock; optionally mirrored to a file."""

    def __init__(self, login: str, state_file: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.login = login
        self.user_id = 1001
        self.repos: dict[str, RepoState] = {}
        self.state_file = state_file
        self._next_id = 2_000_000
        self.extra: JSON = {}

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    # repositories -------------------------------------------------------------------------
    def add_repo(self, owner: str, name: str, bare_path: Path, default_branch: str) -> RepoState:
        with self.lock:
            key = f"{owner}/{name}".lower()
            if key in self.repos:
                repo = self.repos[key]
                repo.bare_path = str(Path(bare_path).resolve())
                repo.default_branch = default_branch
                return repo
            repo = RepoState(
                id=self.new_id(),
                owner=owner,
                name=name,
                bare_path=str(Path(bare_path).resolve()),
                default_branch=default_branch,
                created_at=now_iso(),
            )
            self.repos[key] = repo
            return repo

    def repo(self, owner: str, name: str) -> RepoState:
        found = self.repos.get(f"{owner}/{name}".lower())
        if found is None:
            raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        return found

    def repo_by_id(self, repo_id: int) -> RepoState:
        for repo in self.repos.values():
            if repo.id == repo_id:
                return repo
        raise not_found()

    def default_repo(self) -> RepoState:
        if not self.repos:
            raise LookupError("no repository: call add_repo first")
        return next(iter(self.repos.values()))

    # persistence --------------------------------------------------------------------------
    def to_json(self) -> JSON:
        with self.lock:
            return {
                "version": STATE_VERSION,
                "login": self.login,
                "next_id": self._next_id,
                "repos": [r.to_json() for r in self.repos.values()],
                **self.extra,
            }

    def load_json(self, data: JSON) -> None:
        with self.lock:
            self.login = data.get("login", self.login)
            self._next_id = max(self._next_id, int(data.get("next_id", 0)))
            for raw in data.get("repos", []):
                repo = RepoState.from_json(raw)
                self.repos[repo.full_name.lower()] = repo
            self.extra = {
                k: v for k, v in data.items() if k not in ("version", "login", "next_id", "repos")
            }

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            text = json.dumps(self.to_json(), indent=1, sort_keys=False)
        atomic_write_text(self.state_file, text)

    # rendering ----------------------------------------------------------------------------
    def user(self, urls: Urls, login: str | None = None) -> JSON:
        login = login or self.login
        user_id = self.user_id if login == self.login else 5000 + sum(map(ord, login))
        kind = "Bot" if login.endswith("[bot]") else "User"
        return user_payload(urls.api, urls.web, login, user_id, kind)

    def render_repo(self, urls: Urls, repo: RepoState, *, full: bool = True) -> JSON:
        owner = self.user(urls, repo.owner)
        return repo_payload(
            urls.api,
            urls.web,
            repo_id=repo.id,
            owner=owner,
            name=repo.name,
            default_branch=repo.default_branch,
            created_at=repo.created_at,
            # Stable, so that a repository's ETag only changes when something in it does.
            pushed_at=repo.created_at,
            open_issues=repo.open_issue_count(),
            full=full,
        )

    def render_label(self, urls: Urls, repo: RepoState, label: JSON) -> JSON:
        body = label_payload(urls.api, repo.full_name, label["id"], label)
        return body

    def render_issue_labels(self, urls: Urls, repo: RepoState, issue: JSON) -> list[JSON]:
        out = []
        for name in issue["labels"]:
            label = repo.label(name)
            if label is not None:
                out.append(self.render_label(urls, repo, label))
        return out

    def render_issue(self, urls: Urls, repo: RepoState, issue: JSON) -> JSON:
        r = f"{urls.api}/repos/{repo.full_name}"
        number = issue["number"]
        assignees = [self.user(urls, a) for a in issue["assignees"]]
        body: JSON = {
            "url": f"{r}/issues/{number}",
            "repository_url": r,
            "labels_url": f"{r}/issues/{number}/labels{{/name}}",
            "comments_url": f"{r}/issues/{number}/comments",
            "events_url": f"{r}/issues/{number}/events",
            "html_url": f"{urls.web}/{repo.full_name}/{'pull' if issue.get('pull') else 'issues'}/{number}",
            "id": issue["id"],
            "node_id": node_id("PR" if issue.get("pull") else "I", issue["id"]),
            "number": number,
            "title": issue["title"],
            "user": self.user(urls, issue["user"]),
            "labels": self.render_issue_labels(urls, repo, issue),
            "state": issue["state"],
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": len(issue["comments"]),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["closed_at"],
            "author_association": "OWNER" if issue["user"] == repo.owner else "COLLABORATOR",
            "type": None,
            "active_lock_reason": None,
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        }
        pull = issue.get("pull")
        if pull is not None:
            body["draft"] = pull.get("draft", False)
            body["pull_request"] = {
                "url": f"{r}/pulls/{number}",
                "html_url": f"{urls.web}/{repo.full_name}/pull/{number}",
                "diff_url": f"{urls.web}/{repo.full_name}/pull/{number}.diff",
                "patch_url": f"{urls.web}/{repo.full_name}/pull/{number}.patch",
                "merged_at": pull.get("merged_at"),
            }
        body.update(
            {
                "body": issue["body"],
                "closed_by": self.user(urls, issue["closed_by"])
                if issue.get("closed_by")
                else None,
                "reactions": {
                    "url": f"{r}/issues/{number}/reactions",
                    "total_count": 0,
                    "+1": 0,
                    "-1": 0,
                    "laugh": 0,
                    "hooray": 0,
                    "confused": 0,
                    "heart": 0,
                    "rocket": 0,
                    "eyes": 0,
                },
                "timeline_url": f"{r}/issues/{number}/timeline",
                "performed_via_github_app": None,
                "state_reason": issue.get("state_reason"),
            }
        )
        return body

    def render_comment(self, urls: Urls, repo: RepoState, issue: JSON, comment: JSON) -> JSON:
        r = f"{urls.api}/repos/{repo.full_name}"
        return {
            "url": f"{r}/issues/comments/{comment['id']}",
            "html_url": f"{urls.web}/{repo.full_name}/issues/{issue['number']}#issuecomment-{comment['id']}",
            "issue_url": f"{r}/issues/{issue['number']}",
            "id": comment["id"],
            "node_id": node_id("IC", comment["id"]),
            "user": self.user(urls, comment["user"]),
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
            "author_association": "OWNER" if comment["user"] == repo.owner else "COLLABORATOR",
            "body": comment["body"],
            "reactions": {
                "url": f"{r}/issues/comments/{comment['id']}/reactions",
                "total_count": 0,
                "+1": 0,
                "-1": 0,
                "laugh": 0,
                "hooray": 0,
                "confused": 0,
                "heart": 0,
                "rocket": 0,
                "eyes": 0,
            },
            "performed_via_github_app": None,
        }

    # issues -------------------------------------------------------------------------------
    def create_issue(
        self,
        repo: RepoState,
        *,
        title: str,
        body: str | None,
        labels: list[str],
        assignees: list[str],
        user: str | None = None,
        state: str = "open",
        pull: JSON | None = None,
    ) -> JSON:
        with self.lock:
            now = now_iso()
            names = [repo.ensure_label(self, name)["name"] for name in _unique(labels)]
            issue: JSON = {
                "number": repo.next_number,
                "id": self.new_id(),
                "title": title,
                "body": body,
                "state": state,
                "state_reason": "completed" if state == "closed" else None,
                "labels": names,
                "assignees": _unique(assignees),
                "user": user or self.login,
                "created_at": now,
                "updated_at": now,
                "closed_at": now if state == "closed" else None,
                "closed_by": None,
                "comments": [],
                "pull": pull,
            }
            repo.next_number += 1
            repo.issues[issue["number"]] = issue
            return issue

    def issue(self, repo: RepoState, number: int, *, doc: str | None = None) -> JSON:
        found = repo.issues.get(number)
        if found is None:
            raise not_found(doc or "https://docs.github.com/rest/issues/issues#get-an-issue")
        return found

    def touch(self, issue: JSON) -> None:
        issue["updated_at"] = now_iso()

    def set_state(self, issue: JSON, state: str, reason: str | None = None) -> None:
        if state not in ("open", "closed"):
            raise validation_failed("Issue", "invalid", "state")
        if state == issue["state"]:
            return
        issue["state"] = state
        if state == "closed":
            issue["closed_at"] = now_iso()
            issue["closed_by"] = self.login
            issue["state_reason"] = reason or "completed"
        else:
            issue["closed_at"] = None
            issue["closed_by"] = None
            issue["state_reason"] = "reopened"

    def add_labels(self, repo: RepoState, issue: JSON, names: list[str]) -> None:
        for name in names:
            label = repo.ensure_label(self, name)
            if all(existing.lower() != name.lower() for existing in issue["labels"]):
                issue["labels"].append(label["name"])
        self.touch(issue)

    def remove_label(self, repo: RepoState, issue: JSON, name: str) -> None:
        kept = [n for n in issue["labels"] if n.lower() != name.lower()]
        if len(kept) == len(issue["labels"]):
            raise ApiError(
                404,
                "Label does not exist",
                documentation_url="https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue",
            )
        issue["labels"] = kept
        self.touch(issue)

    def label_url_name(self, name: str) -> str:
        return quote(name, safe="")


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
