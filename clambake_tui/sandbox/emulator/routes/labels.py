"""Routes for a repository's labels."""

from __future__ import annotations

from typing import Any

from clambake_tui.sandbox.emulator.errors import not_found, validation_failed
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.store import JSON, RepoState

__all__ = ["register"]


def register(router: Router) -> None:
    r = "/repos/{owner}/{repo}"
    add = router.add
    add("GET", f"{r}/labels", _list_labels)
    add("POST", f"{r}/labels", _create_label)
    add("GET", f"{r}/labels/{{name+}}", _get_label)
    add("PATCH", f"{r}/labels/{{name+}}", _update_label)
    add("DELETE", f"{r}/labels/{{name+}}", _delete_label)


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
