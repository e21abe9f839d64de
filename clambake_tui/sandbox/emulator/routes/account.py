"""Routes for the account and the repository itself: rate_limit, user, repository."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clambake_tui.sandbox.emulator.http import Request, Response, Router

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.server import ApiServer

__all__ = ["register"]


def register(router: Router, api: ApiServer) -> None:
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
