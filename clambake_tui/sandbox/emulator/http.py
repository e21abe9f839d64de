"""Requests, responses, routing and pagination: the HTTP vocabulary the routes are written in."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from clambake_tui.sandbox.emulator.errors import ApiError

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.store import RepoState, Store, Urls

__all__ = ["Request", "Response", "Router", "Handler", "PER_PAGE_DEFAULT", "PER_PAGE_MAX"]

PER_PAGE_DEFAULT = 30
PER_PAGE_MAX = 100
_UNSET = object()


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, indent=2).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_body: bytes
    params: dict[str, str]
    login: str | None
    store: Store
    urls: Urls
    headers: dict[str, str]
    identity: str = "token"
    _parsed: Any = field(default=_UNSET, repr=False)

    # bodies --------------------------------------------------------------------------------
    def json_any(self) -> Any:
        if self._parsed is _UNSET:
            text = self.raw_body.decode("utf-8", errors="replace").strip()
            if not text:
                self._parsed = {}
            else:
                try:
                    self._parsed = json.loads(text)
                except ValueError:
                    raise ApiError(
                        400,
                        "Problems parsing JSON",
                        documentation_url="https://docs.github.com/rest",
                    ) from None
        return self._parsed

    def json(self) -> dict[str, Any]:
        data = self.json_any()
        if not isinstance(data, dict):
            raise ApiError(400, "Body should be a JSON object")
        return data

    # common lookups ------------------------------------------------------------------------
    @property
    def repo(self) -> RepoState:
        return self.store.repo(self.params["owner"], self.params["repo"])

    def int_param(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise ApiError(404, "Not Found") from None

    def require_login(self) -> str:
        if self.login is None:
            raise ApiError(401, "Requires authentication")
        return self.login

    # pagination ----------------------------------------------------------------------------
    def page_window(self) -> tuple[int, int]:
        per_page = _positive(self.query.get("per_page"), PER_PAGE_DEFAULT)
        per_page = min(per_page, PER_PAGE_MAX)
        page = _positive(self.query.get("page"), 1)
        return per_page, page

    def paginate(self, items: list[Any], wrap: str | None = None) -> Response:
        """One page of `items` with GitHub's Link header; `wrap` puts it under a key with total_count."""
        per_page, page = self.page_window()
        start = (page - 1) * per_page
        chunk = items[start : start + per_page]
        body: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
        last = max(1, -(-len(items) // per_page))
        headers = {}
        if last > 1 or page > 1:
            headers["Link"] = self._link(page, last, per_page)
        return Response(200, body, headers)

    def _link(self, page: int, last: int, per_page: int) -> str:
        base = self.link_base()
        others = [(k, v) for k, v in self.query.items() if k not in ("page", "per_page")]

        def url(n: int) -> str:
            return f"{base}?{urlencode([*others, ('per_page', str(per_page)), ('page', str(n))])}"

        # The order GitHub uses: prev, next, last, first.
        parts = []
        if page > 1:
            parts.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            parts.append(f'<{url(page + 1)}>; rel="next"')
            parts.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            parts.append(f'<{url(1)}>; rel="first"')
        return ", ".join(parts)

    def link_base(self) -> str:
        """Repository lists link in GitHub's `/repositories/{id}/...` form."""
        match = re.match(r"^/repos/[^/]+/[^/]+(/.*)$", self.path)
        if match and "owner" in self.params:
            return f"{self.urls.api}/repositories/{self.repo.id}{match.group(1)}"
        return f"{self.urls.api}{self.path}"


def _positive(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number > 0 else default


Handler = Callable[[Request], Response]


class Router:
    """Routes are (method, path regex with named groups); the first full match wins."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = pattern.replace("{owner}", "(?P<owner>[^/]+)").replace("{repo}", "(?P<repo>[^/]+)")
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", regex)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and its path parameters; a path known under another method -> 404 too."""
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found and route_method == method.upper():
                return handler, found.groupdict()
        return None
