"""The GitHub emulator's REST answers: status codes, shapes (checked against GitHub's schema), headers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from clambake_tui.sandbox.emulator import Emulator
from tests.fixtures.common import git

REPO = "/repos/clambake/sandbox"


def models() -> Any:
    from githubkit_schemas.latest import models as m

    return m


@pytest.fixture
def gh(emulator: Emulator) -> httpx.Client:
    client = httpx.Client(
        base_url=emulator.url,
        headers={
            "Authorization": f"Bearer {emulator.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        timeout=10,
    )
    yield client
    client.close()


def push_branch(origin: Path, tmp_path: Path, branch: str, files: dict[str, str]) -> str:
    """Commit `files` on a new branch in a clone and push it to `origin`; returns the sha."""
    clone = tmp_path / f"clone-{branch.replace('/', '-')}"
    if not clone.exists():
        git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "-B", branch, "origin/main")
    for name, text in files.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", f"work on {branch}")
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(clone, "rev-parse", "HEAD")


# authentication and errors --------------------------------------------------------------------
def test_a_bad_token_gets_401_bad_credentials_with_a_string_status(emulator: Emulator) -> None:
    resp = httpx.get(f"{emulator.url}{REPO}", headers={"Authorization": "Bearer ghp_wrong"})
    assert resp.status_code == 401
    assert resp.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


def test_anonymous_reads_work_on_the_60_per_hour_budget_and_writes_need_a_token(
    emulator: Emulator,
) -> None:
    resp = httpx.get(f"{emulator.url}{REPO}")
    assert resp.status_code == 200
    assert resp.headers["x-ratelimit-limit"] == "60"
    created = httpx.post(f"{emulator.url}{REPO}/issues", json={"title": "x"})
    assert created.status_code == 401
    assert created.json()["message"] == "Requires authentication"


def test_the_token_looks_like_a_github_token_so_redaction_catches_it(emulator: Emulator) -> None:
    from clambake_tui.redact import redact

    assert re.fullmatch(r"ghp_[A-Za-z0-9]{36}", emulator.token)
    assert emulator.token not in redact(f"token {emulator.token} leaked")


def test_unknown_resources_answer_404_not_found(gh: httpx.Client) -> None:
    assert gh.get("/repos/clambake/nope").status_code == 404
    resp = gh.get(f"{REPO}/issues/999")
    assert resp.status_code == 404
    assert resp.json()["message"] == "Not Found"
    assert resp.json()["status"] == "404"


def test_bad_json_is_400_problems_parsing_json_and_a_list_is_not_an_object(
    gh: httpx.Client,
) -> None:
    resp = gh.post(f"{REPO}/issues", content=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["message"] == "Problems parsing JSON"
    resp = gh.post(f"{REPO}/issues", json=["title"])
    assert resp.status_code == 400
    assert resp.json()["message"] == "Body should be a JSON object"


# repository, user, rate limit -----------------------------------------------------------------
def test_repository_answers_its_default_branch_in_githubs_shape(gh: httpx.Client) -> None:
    resp = gh.get(REPO)
    assert resp.status_code == 200
    repo = models().FullRepository.model_validate(resp.json())
    assert repo.default_branch == "main"
    assert repo.full_name == "clambake/sandbox"


def test_user_is_the_token_owner(gh: httpx.Client, emulator: Emulator) -> None:
    resp = gh.get("/user")
    assert resp.status_code == 200
    models().PublicUser.model_validate(resp.json())
    assert resp.json()["login"] == emulator.store.login


def test_rate_limit_costs_nothing_and_reports_core(gh: httpx.Client) -> None:
    first = gh.get("/rate_limit")
    second = gh.get("/rate_limit")
    models().RateLimitOverview.model_validate(second.json())
    assert first.json()["resources"]["core"] == second.json()["resources"]["core"]
    assert second.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


def test_every_answer_carries_the_rate_limit_headers_and_each_request_spends_one(
    gh: httpx.Client,
) -> None:
    one = gh.get(REPO)
    two = gh.get(f"{REPO}/issues")
    for resp in (one, two):
        for name in ("limit", "remaining", "used", "reset", "resource"):
            assert f"x-ratelimit-{name}" in resp.headers
    assert int(one.headers["x-ratelimit-remaining"]) - 1 == int(
        two.headers["x-ratelimit-remaining"]
    )
    assert int(two.headers["x-ratelimit-used"]) == int(one.headers["x-ratelimit-used"]) + 1
    assert two.headers["x-ratelimit-resource"] == "core"
    assert int(two.headers["x-ratelimit-reset"]) > time.time()


# issues -------------------------------------------------------------------------------------
def test_issues_list_filters_by_every_label_given_and_by_state(
    gh: httpx.Client, emulator: Emulator
) -> None:
    a = emulator.add_issue("A", labels=["route:ready", "route:priority-high"])
    emulator.add_issue("B", labels=["route:ready"])
    emulator.add_issue("C", labels=["route:review"])
    emulator.add_issue("D", labels=["route:ready"], state="closed")
    resp = gh.get(f"{REPO}/issues", params={"labels": "route:ready,route:priority-high"})
    assert [i["number"] for i in resp.json()] == [a]
    ready = gh.get(f"{REPO}/issues", params={"labels": "route:ready"}).json()
    assert [i["title"] for i in ready] == ["B", "A"]  # newest first, open only
    every = gh.get(f"{REPO}/issues", params={"labels": "route:ready", "state": "all"}).json()
    assert len(every) == 3
    for issue in every:
        models().Issue.model_validate(issue)


def test_issue_lists_include_pull_requests_marked_by_the_pull_request_key(
    gh: httpx.Client, emulator: Emulator, origin_repo: Path, tmp_path: Path
) -> None:
    emulator.add_issue("plain issue")
    push_branch(origin_repo, tmp_path, "agent001/1-fix", {"fix.txt": "x\n"})
    created = gh.post(
        f"{REPO}/pulls", json={"title": "Fix", "head": "agent001/1-fix", "base": "main"}
    )
    assert created.status_code == 201
    issues = gh.get(f"{REPO}/issues").json()
    by_title = {i["title"]: i for i in issues}
    assert "pull_request" in by_title["Fix"]
    assert "pull_request" not in by_title["plain issue"]
    models().Issue.model_validate(by_title["Fix"])


def test_create_issue_answers_201_and_a_missing_title_is_422(gh: httpx.Client) -> None:
    resp = gh.post(f"{REPO}/issues", json={"title": "New", "body": "b", "labels": ["bug"]})
    assert resp.status_code == 201
    issue = models().Issue.model_validate(resp.json())
    assert issue.number == 1
    assert [lb["name"] for lb in resp.json()["labels"]] == ["bug"]
    bad = gh.post(f"{REPO}/issues", json={"body": "no title"})
    assert bad.status_code == 422
    assert bad.json()["message"] == "Validation Failed"
    assert bad.json()["errors"] == [
        {"resource": "Issue", "code": "missing_field", "field": "title"}
    ]


def test_update_issue_closes_it_with_closed_at_and_state_reason(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("close me")
    resp = gh.patch(f"{REPO}/issues/{n}", json={"state": "closed"})
    assert resp.status_code == 200
    assert resp.json()["state"] == "closed"
    assert resp.json()["closed_at"]
    assert resp.json()["state_reason"] == "completed"


def test_adding_labels_answers_200_with_the_whole_label_list(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("x", labels=["route:ready"])
    resp = gh.post(f"{REPO}/issues/{n}/labels", json={"labels": ["agent001"]})
    assert resp.status_code == 200
    assert [lb["name"] for lb in resp.json()] == ["route:ready", "agent001"]
    for label in resp.json():
        models().Label.model_validate({"archived_at": None, "archived_by": None, **label})
    # GitHub also takes a bare list.
    resp = gh.post(f"{REPO}/issues/{n}/labels", json=["route:priority-low"])
    assert [lb["name"] for lb in resp.json()][-1] == "route:priority-low"


def test_removing_a_label_answers_the_rest_and_a_missing_one_is_404_label_does_not_exist(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("x", labels=["route:ready", "agent002"])
    resp = gh.delete(f"{REPO}/issues/{n}/labels/route:ready")
    assert resp.status_code == 200
    assert [lb["name"] for lb in resp.json()] == ["agent002"]
    again = gh.delete(f"{REPO}/issues/{n}/labels/route%3Aready")
    assert again.status_code == 404
    assert again.json()["message"] == "Label does not exist"
    assert again.json()["status"] == "404"


def test_set_labels_replaces_them(gh: httpx.Client, emulator: Emulator) -> None:
    n = emulator.add_issue("x", labels=["a", "b"])
    resp = gh.put(f"{REPO}/issues/{n}/labels", json={"labels": ["c"]})
    assert resp.status_code == 200
    assert [lb["name"] for lb in resp.json()] == ["c"]


def test_assignees_are_added_with_201_and_removed_with_200(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("x")
    added = gh.post(f"{REPO}/issues/{n}/assignees", json={"assignees": ["octo"]})
    assert added.status_code == 201
    assert [a["login"] for a in added.json()["assignees"]] == ["octo"]
    assert added.json()["assignee"]["login"] == "octo"
    removed = gh.request("DELETE", f"{REPO}/issues/{n}/assignees", json={"assignees": ["octo"]})
    assert removed.status_code == 200
    assert removed.json()["assignees"] == []


def test_comments_are_created_with_201_and_listed(gh: httpx.Client, emulator: Emulator) -> None:
    n = emulator.add_issue("x")
    resp = gh.post(f"{REPO}/issues/{n}/comments", json={"body": "Working on it"})
    assert resp.status_code == 201
    models().IssueComment.model_validate(resp.json())
    listed = gh.get(f"{REPO}/issues/{n}/comments").json()
    assert [c["body"] for c in listed] == ["Working on it"]
    assert gh.get(f"{REPO}/issues/{n}").json()["comments"] == 1


def test_repository_labels_are_created_listed_and_a_duplicate_is_422_already_exists(
    gh: httpx.Client,
) -> None:
    resp = gh.post(f"{REPO}/labels", json={"name": "route:ready", "color": "0e8a16"})
    assert resp.status_code == 201
    dup = gh.post(f"{REPO}/labels", json={"name": "ROUTE:READY"})
    assert dup.status_code == 422
    assert dup.json()["errors"][0]["code"] == "already_exists"
    assert [lb["name"] for lb in gh.get(f"{REPO}/labels").json()] == ["route:ready"]
    assert gh.get(f"{REPO}/labels/route:ready").json()["color"] == "0e8a16"


# pull requests ------------------------------------------------------------------------------
def test_create_pull_answers_201_in_githubs_shape(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    sha = push_branch(origin_repo, tmp_path, "feature", {"f.txt": "1\n"})
    resp = gh.post(
        f"{REPO}/pulls",
        json={"title": "Feature", "head": "clambake:feature", "base": "main", "body": "Fixes #1"},
    )
    assert resp.status_code == 201
    pull = models().PullRequest.model_validate(resp.json())
    assert pull.head.sha == sha
    assert pull.head.ref == "feature"
    assert pull.mergeable is None  # still being computed, as GitHub answers a new one
    assert pull.mergeable_state == "unknown"
    assert pull.commits == 1
    got = gh.get(f"{REPO}/pulls/{pull.number}")
    assert got.status_code == 200
    assert models().PullRequest.model_validate(got.json()).mergeable is True


def test_a_conflicting_pull_is_not_mergeable(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    push_branch(origin_repo, tmp_path, "left", {"README.md": "left\n"})
    push_branch(origin_repo, tmp_path, "right", {"README.md": "right\n"})
    left = gh.post(f"{REPO}/pulls", json={"title": "l", "head": "left", "base": "main"}).json()
    right = gh.post(f"{REPO}/pulls", json={"title": "r", "head": "right", "base": "main"}).json()
    assert gh.put(f"{REPO}/pulls/{left['number']}/merge", json={}).status_code == 200
    after = gh.get(f"{REPO}/pulls/{right['number']}").json()
    assert (after["mergeable"], after["mergeable_state"]) == (False, "dirty")
    refused = gh.put(f"{REPO}/pulls/{right['number']}/merge", json={})
    assert (refused.status_code, refused.json()["message"]) == (
        405,
        "Pull Request is not mergeable",
    )


def test_a_second_pull_for_the_same_head_is_422_already_exists(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    push_branch(origin_repo, tmp_path, "feature", {"f.txt": "1\n"})
    assert (
        gh.post(f"{REPO}/pulls", json={"title": "a", "head": "feature", "base": "main"}).status_code
        == 201
    )
    again = gh.post(f"{REPO}/pulls", json={"title": "b", "head": "feature", "base": "main"})
    assert again.status_code == 422
    assert again.json()["message"] == "Validation Failed"
    assert again.json()["errors"] == [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for clambake:feature.",
        }
    ]


def test_a_pull_with_nothing_to_merge_is_422_no_commits_between(
    gh: httpx.Client, origin_repo: Path
) -> None:
    sha = git(origin_repo, "rev-parse", "main")
    git(origin_repo, "update-ref", "refs/heads/empty", sha)
    resp = gh.post(f"{REPO}/pulls", json={"title": "t", "head": "empty", "base": "main"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["message"] == "No commits between main and empty"


def test_a_pull_from_a_missing_branch_is_422_head_invalid(gh: httpx.Client) -> None:
    resp = gh.post(f"{REPO}/pulls", json={"title": "t", "head": "nowhere", "base": "main"})
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {"resource": "PullRequest", "code": "invalid", "field": "head"}
    ]


def test_pulls_list_filters_by_head_owner_branch_and_state(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    push_branch(origin_repo, tmp_path, "one", {"1.txt": "1\n"})
    push_branch(origin_repo, tmp_path, "two", {"2.txt": "2\n"})
    for head in ("one", "two"):
        gh.post(f"{REPO}/pulls", json={"title": head, "head": head, "base": "main"})
    only = gh.get(f"{REPO}/pulls", params={"head": "clambake:two"}).json()
    assert [p["title"] for p in only] == ["two"]
    models().PullRequestSimple.model_validate(only[0])
    assert gh.get(f"{REPO}/pulls", params={"head": "someone:two"}).json() == []
    assert len(gh.get(f"{REPO}/pulls", params={"state": "closed"}).json()) == 0


def test_merging_a_pull_moves_the_base_branch_and_closes_the_issues_it_fixes(
    gh: httpx.Client, emulator: Emulator, origin_repo: Path, tmp_path: Path
) -> None:
    issue = emulator.add_issue("bug", labels=["route:review"])
    push_branch(origin_repo, tmp_path, "bundle/x", {"b.txt": "b\n"})
    pr = gh.post(
        f"{REPO}/pulls",
        json={"title": "Bundle", "head": "bundle/x", "base": "main", "body": f"Fixes #{issue}"},
    ).json()
    resp = gh.put(f"{REPO}/pulls/{pr['number']}/merge", json={})
    assert resp.status_code == 200
    assert resp.json()["merged"] is True
    assert git(origin_repo, "rev-parse", "main") == resp.json()["sha"]
    assert emulator.issue(issue)["state"] == "closed"
    assert gh.get(f"{REPO}/pulls/{pr['number']}").json()["merged"] is True


# branches and refs --------------------------------------------------------------------------
def test_branches_and_refs_are_read_from_the_bare_repository(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    sha = push_branch(origin_repo, tmp_path, "agent003/7-slug", {"x": "1"})
    branch = gh.get(f"{REPO}/branches/agent003/7-slug")
    assert branch.status_code == 200
    models().BranchWithProtection.model_validate(branch.json())
    assert branch.json()["commit"]["sha"] == sha
    ref = gh.get(f"{REPO}/git/ref/heads/agent003/7-slug")
    assert ref.status_code == 200
    models().GitRef.model_validate(ref.json())
    assert ref.json()["object"]["sha"] == sha
    matching = gh.get(f"{REPO}/git/matching-refs/heads/agent003/").json()
    assert [r["ref"] for r in matching] == ["refs/heads/agent003/7-slug"]
    assert gh.get(f"{REPO}/git/matching-refs/heads/nobody").json() == []
    assert gh.get(f"{REPO}/branches/missing").status_code == 404
    assert gh.get(f"{REPO}/git/ref/heads/missing").status_code == 404


def test_refs_can_be_created_and_deleted(gh: httpx.Client, origin_repo: Path) -> None:
    sha = git(origin_repo, "rev-parse", "main")
    made = gh.post(f"{REPO}/git/refs", json={"ref": "refs/heads/new", "sha": sha})
    assert made.status_code == 201
    assert git(origin_repo, "rev-parse", "new") == sha
    assert gh.delete(f"{REPO}/git/refs/heads/new").status_code == 204
    assert gh.get(f"{REPO}/git/ref/heads/new").status_code == 404


def test_label_names_with_slashes_or_colons_round_trip(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("x", labels=["area/ui"])
    resp = gh.delete(f"{REPO}/issues/{n}/labels/area%2Fui")
    assert resp.status_code == 200
    assert json.loads(resp.text) == []


def test_pull_requests_can_be_seeded_with_the_same_rules(
    gh: httpx.Client, emulator: Emulator, origin_repo: Path, tmp_path: Path
) -> None:
    push_branch(origin_repo, tmp_path, "seeded", {"s.txt": "s\n"})
    number = emulator.add_pull("seeded", "Seeded PR", "Fixes #1", labels=["route:ready_to_merge"])
    got = gh.get(f"{REPO}/pulls/{number}").json()
    assert (got["title"], got["head"]["ref"], got["base"]["ref"]) == ("Seeded PR", "seeded", "main")
    assert [lb["name"] for lb in got["labels"]] == ["route:ready_to_merge"]
    with pytest.raises(LookupError, match="already exists"):
        emulator.add_pull("seeded", "Again")


def test_html_urls_lead_to_plain_pages_outside_the_api_budget(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("Count words", "Please count them.", ["route:ready"])
    html_url = gh.get(f"{REPO}/issues/{n}").json()["html_url"]
    before = emulator.rate_limit_remaining()
    page = httpx.get(html_url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Count words" in page.text and "Please count them." in page.text
    assert emulator.rate_limit_remaining() == before
    assert httpx.get(f"{emulator.url}/clambake/sandbox/issues/999").status_code == 404
