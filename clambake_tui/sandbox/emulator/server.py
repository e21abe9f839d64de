"""The HTTP server: authentication, rate-limit budget, faults, ETags, then the route."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from clambake_tui.logs import get_logger
from clambake_tui.sandbox.emulator.errors import ApiError
from clambake_tui.sandbox.emulator.faults import Fault, FaultKind, FaultPlan
from clambake_tui.sandbox.emulator.http import Request, Response, Router
from clambake_tui.sandbox.emulator.limits import SecondaryLimits
from clambake_tui.sandbox.emulator.store import Store, Urls

__all__ = ["ApiServer", "RateBudget", "RequestRecord", "Downloads"]

log = get_logger(__name__)

RATE_DOC = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
API_VERSION = "2022-11-28"
WINDOW_SECONDS = 3600
MAX_RECORDS = 20_000


@dataclass(frozen=True, slots=True)
class RunToken:
    """A workflow run's GITHUB_TOKEN: a bot login, its own budget and its permissions."""

    login: str
    identity: str
    limit: int
    permissions: dict[str, str]  # scope -> "read" | "write" | "none"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the emulator saw it (for tests: retries, budgets, what was sent)."""

    method: str
    path: str
    query: str
    status: int
    authenticated: bool
    headers: dict[str, str]
    body: bytes
    at: float


class RateBudget:
    """The primary rate limit of one identity (a token or an anonymous address)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.reset = int(time.time()) + WINDOW_SECONDS

    def roll(self) -> None:
        now = time.time()
        if now >= self.reset:
            self.used = 0
            self.reset = int(now) + WINDOW_SECONDS

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str = "core") -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Used": str(self.used),
            "X-RateLimit-Resource": resource,
        }

    def as_json(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "reset": self.reset,
        }


class Downloads:
    """Short-lived pre-signed URLs for log downloads, like the blob links GitHub redirects to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, bytes, str]] = {}

    def put(self, data: bytes, content_type: str, ttl: float) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[key] = (now + ttl, data, content_type)
        return key

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or item[0] <= time.time():
            return None
        return item[1], item[2]


class ApiServer:
    """Everything one HTTP request passes through before and after its route."""

    def __init__(
        self,
        *,
        store: Store,
        router: Router,
        token: str,
        rate_limit: int,
        anonymous_rate_limit: int,
        allow_anonymous: bool,
        host: str,
        port: int,
        web_url: str | None,
    ) -> None:
        self.store = store
        self.router = router
        self.token = token
        self.rate_limit = rate_limit
        self.anonymous_rate_limit = anonymous_rate_limit
        self.allow_anonymous = allow_anonymous
        self.faults = FaultPlan()
        self.downloads = Downloads()
        self.budgets: dict[str, RateBudget] = {}
        self.run_tokens: dict[str, RunToken] = {}
        # The latest requests only: a long `serve` under a polling dashboard must not grow forever.
        self.records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._records_lock = threading.Lock()
        self._stopping = threading.Event()
        self.host = host
        self._httpd = _Server((host, port), _Handler)
        self._httpd.api = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.urls = Urls(api=self.url, web=web_url or self.url)
        self._thread: threading.Thread | None = None
        self.secondary_limits: SecondaryLimits | None = None
        # Pages behind html_url links (set by the emulator); not part of the API.
        self.web: Callable[[str], Response | None] | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"github-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, *, serving: bool = True) -> None:
        self._stopping.set()
        if serving:
            # shutdown() waits for serve_forever to notice: only call it when it runs.
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    # budgets -------------------------------------------------------------------------------
    def budget(self, identity: str) -> RateBudget:
        with self.store.lock:
            budget = self.budgets.get(identity)
            if budget is None:
                run_token = next(
                    (t for t in self.run_tokens.values() if t.identity == identity), None
                )
                if run_token is not None:
                    limit = run_token.limit
                elif identity.startswith("anon:"):
                    limit = self.anonymous_rate_limit
                else:
                    limit = self.rate_limit
                budget = self.budgets[identity] = RateBudget(limit)
            budget.roll()
            return budget

    def record(self, rec: RequestRecord) -> None:
        with self._records_lock:
            self.records.append(rec)

    # the request pipeline ------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, client: str
    ) -> Response | None:
        """The answer to one request; None means drop the connection without answering."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/_blobs/"):
            return self._download(path.removeprefix("/_blobs/").split("/", 1)[0])
        if method in ("GET", "HEAD") and self.web is not None and not path.startswith("/repos/"):
            page = self.web(path)
            if page is not None:
                return page
        if method == "HEAD":
            method = "GET"  # same answer, the handler drops the body
        if path.startswith("/repositories/"):
            path = self._from_repository_id(path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))

        auth = _token_from(headers.get("authorization", ""))
        run_token = self.run_tokens.get(auth) if auth else None
        valid = run_token is not None or (
            auth is not None and secrets.compare_digest(auth, self.token)
        )
        if run_token is not None:
            identity = run_token.identity
        else:
            identity = "token" if valid else f"anon:{client}"
        budget = self.budget(identity)

        fault = self.faults.pick(method, path)
        if fault is not None:
            early = self._apply_fault(fault)
            if fault.kind is FaultKind.TIMEOUT:
                return None
            if early is not None:
                early.headers.update(budget.headers())
                return early

        login: str | None = None
        if auth is not None:
            if not valid:
                return self._error(ApiError(401, "Bad credentials"), budget)
            login = run_token.login if run_token else self.store.login
            if run_token is not None:
                denied = _denied(run_token, method, path)
                if denied is not None:
                    return self._error(denied, budget)
        elif not self.allow_anonymous:
            return self._error(ApiError(401, "Requires authentication"), budget)

        free = path == "/rate_limit"
        if fault is not None and fault.kind is FaultKind.PRIMARY_RATE_LIMIT:
            return self._exhausted(budget, fault.status or 403, client, login, force=True)
        if not free and budget.remaining <= 0:
            return self._exhausted(budget, 403, client, login)

        limits = self.secondary_limits
        if limits is None:
            return self._route(method, path, query, body, headers, login, identity, budget, free)
        if not limits.enter(identity, method):
            refused = self._secondary(403, limits.retry_after)
            refused.headers.update(budget.headers())
            return refused
        try:
            return self._route(method, path, query, body, headers, login, identity, budget, free)
        finally:
            limits.leave(identity)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        headers: dict[str, str],
        login: str | None,
        identity: str,
        budget: RateBudget,
        free: bool,
    ) -> Response:
        """Run the route and finish its answer: conditional GET, budget, headers, saving."""
        found = self.router.match(method, path)
        if found is None:
            resp: Response = self._error_response(ApiError(404, "Not Found"))
        else:
            handler, params = found
            request = Request(
                method=method,
                path=path,
                query=query,
                raw_body=body,
                params={k: unquote(v) for k, v in params.items()},
                login=login,
                store=self.store,
                urls=self.urls,
                headers=headers,
                identity=identity,
            )
            try:
                with self.store.lock:
                    resp = handler(request)
            except ApiError as exc:
                resp = self._error_response(exc)
            except Exception:
                log.error("emulator route failed", exc_info=True)
                resp = self._error_response(ApiError(500, "Server Error"))

        if method == "GET" and resp.status == 200 and resp.raw is None:
            resp = self._conditional(resp, headers)
        if not free and resp.status != 304:
            with self.store.lock:
                budget.used += 1
        resp.headers.update(budget.headers())
        if resp.status < 400 and method != "GET":
            self.store.save()
        return resp

    @staticmethod
    def _conditional(resp: Response, headers: dict[str, str]) -> Response:
        """ETag / Last-Modified on a GET, and the free 304 when the client already has it."""
        etag = 'W/"' + hashlib.sha256(resp.encode()).hexdigest() + '"'
        resp.headers["ETag"] = etag
        modified = _last_modified(resp.body)
        if modified is not None:
            resp.headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        not_modified = False
        if "if-none-match" in headers:
            not_modified = _etag_matches(headers["if-none-match"], etag)
        elif "if-modified-since" in headers and modified is not None:
            try:
                since = parsedate_to_datetime(headers["if-modified-since"])
            except (TypeError, ValueError):
                since = None
            not_modified = since is not None and modified <= since
        if not_modified:
            # A conditional hit is free: GitHub does not count it against the budget.
            kept = {k: v for k, v in resp.headers.items() if k in ("ETag", "Last-Modified")}
            return Response(304, None, kept)
        return resp

    def _from_repository_id(self, path: str) -> str:
        head, _, rest = path.removeprefix("/repositories/").partition("/")
        try:
            repo = self.store.repo_by_id(int(head))
        except (ValueError, ApiError):
            return path
        return f"/repos/{repo.owner}/{repo.name}" + (f"/{rest}" if rest else "")

    def _download(self, key: str) -> Response:
        item = self.downloads.get(key)
        if item is None:
            # What the blob store says about an expired or forged signature.
            return Response(
                403,
                raw=b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
                b"<Message>Signed expiry time has passed.</Message></Error>",
                content_type="application/xml",
            )
        data, content_type = item
        return Response(200, raw=data, content_type=content_type)

    def _apply_fault(self, fault: Fault) -> Response | None:
        if fault.kind is FaultKind.DELAY:
            self._stopping.wait(fault.seconds)
            return None
        if fault.kind is FaultKind.TIMEOUT:
            self._stopping.wait(fault.seconds)
            return None
        if fault.kind is FaultKind.ERROR:
            status = fault.status or 502
            message = {
                500: "Server Error",
                502: "Server Error",
                503: "Service Unavailable",
                504: "We couldn't respond to your request in time. Sorry about that.",
            }.get(status, "Server Error")
            return self._error_response(ApiError(status, message))
        if fault.kind in (FaultKind.SECONDARY_RATE_LIMIT, FaultKind.TOO_MANY_REQUESTS):
            status = fault.status or (429 if fault.kind is FaultKind.TOO_MANY_REQUESTS else 403)
            return self._secondary(status, fault.retry_after)
        return None

    def _secondary(self, status: int, retry_after: int | None) -> Response:
        resp = self._error_response(
            ApiError(
                status,
                SECONDARY_MESSAGE.format(rid=_request_id()),
                documentation_url="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            )
        )
        if retry_after is not None:
            resp.headers["Retry-After"] = str(retry_after)
        return resp

    def _exhausted(
        self,
        budget: RateBudget,
        status: int,
        client: str,
        login: str | None,
        *,
        force: bool = False,
    ) -> Response:
        if login is None:
            message = (
                f"API rate limit exceeded for {client}. (But here's the good news: Authenticated "
                "requests get a higher rate limit. Check out the documentation for more details.)"
            )
        else:
            message = (
                f"API rate limit exceeded for user ID {self.store.user_id}. If you reach out to "
                f"GitHub Support for help, please include the request ID {_request_id()}."
            )
        resp = self._error_response(ApiError(status, message, documentation_url=RATE_DOC))
        resp.headers.update(budget.headers())
        if force:
            resp.headers["X-RateLimit-Remaining"] = "0"
            resp.headers["X-RateLimit-Used"] = str(budget.limit)
        return resp

    def _error(self, exc: ApiError, budget: RateBudget) -> Response:
        resp = self._error_response(exc)
        resp.headers.update(budget.headers())
        return resp

    @staticmethod
    def _error_response(exc: ApiError) -> Response:
        return Response(exc.status, exc.body(), dict(exc.headers))


# Which GITHUB_TOKEN permission a route needs (metadata is always readable).
_SCOPES: tuple[tuple[str, str], ...] = (
    (r"^/repos/[^/]+/[^/]+/(issues|labels)(/|$)", "issues"),
    (r"^/repos/[^/]+/[^/]+/pulls(/|$)", "pull-requests"),
    (r"^/repos/[^/]+/[^/]+/(git|branches|commits|contents)(/|$)", "contents"),
    (r"^/repos/[^/]+/[^/]+/actions(/|$)", "actions"),
)


def _denied(token: RunToken, method: str, path: str) -> ApiError | None:
    """GitHub's answer when a workflow's token lacks the permission a request needs."""
    if path == "/user":
        return ApiError(403, "Resource not accessible by integration")
    for pattern, scope in _SCOPES:
        if re.match(pattern, path):
            level = token.permissions.get(scope, "none")
            needed = ("read", "write") if method == "GET" else ("write",)
            if level not in needed:
                return ApiError(
                    403,
                    "Resource not accessible by integration",
                    documentation_url="https://docs.github.com/rest",
                )
            return None
    return None


def _token_from(header: str) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return ""


def _last_modified(body: Any) -> datetime | None:
    """A single resource's updated_at, to the second (what Last-Modified can carry)."""
    if not isinstance(body, dict) or not isinstance(body.get("updated_at"), str):
        return None
    try:
        return datetime.fromisoformat(body["updated_at"].replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _request_id() -> str:
    raw = secrets.token_hex(10).upper()
    return f"{raw[:4]}:{raw[4:9]}:{raw[9:15]}:{raw[15:20]}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer is routine (timeouts, cancelled tests): log, no trace.
        log.debug("emulator connection from %s ended badly", client_address, exc_info=True)

    def server_bind(self) -> None:
        # Plain bind: skip the reverse DNS lookup HTTPServer does, which can stall.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


_STATIC_HEADERS = {
    "X-GitHub-Media-Type": "github.v3; format=json",
    "X-GitHub-Api-Version-Selected": API_VERSION,
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
        "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, "
        "X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, "
        "X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "deny",
    "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "github.com"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "github.com"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept in memory (ApiServer.records)."""

    def _serve(self) -> None:
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        resp = api.handle(self.command, self.path, headers, body, self.client_address[0])
        split = urlsplit(self.path)
        api.record(
            RequestRecord(
                method=self.command,
                path=split.path,
                query=split.query,
                status=0 if resp is None else resp.status,
                authenticated="authorization" in headers,
                headers=headers,
                body=body,
                at=time.time(),
            )
        )
        if resp is None:
            # A held-then-dropped connection: no status line at all.
            self.close_connection = True
            return
        payload = b"" if resp.status in (204, 304) or self.command == "HEAD" else resp.encode()
        self.send_response(resp.status)
        for key, value in _STATIC_HEADERS.items():
            self.send_header(key, value)
        self.send_header("X-GitHub-Request-Id", _request_id())
        if resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        if self.command == "GET" and resp.status in (200, 304) and resp.raw is None:
            self.send_header("Cache-Control", "private, max-age=60, s-maxage=60")
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    do_GET = _serve
    do_POST = _serve
    do_PATCH = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_HEAD = _serve
