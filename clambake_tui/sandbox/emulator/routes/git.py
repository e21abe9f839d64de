"""Routes for branches, refs and commits, read from (and written to) the bare repository."""

from __future__ import annotations

from clambake_tui.sandbox.emulator.errors import ApiError, not_found
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.payloads import commit_payload, ref_payload
from clambake_tui.sandbox.emulator.store import JSON, RepoState

__all__ = ["register"]


def register(router: Router) -> None:
    r = "/repos/{owner}/{repo}"
    add = router.add
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
