"""The HTTP layer under GitHubClient: headers, timeouts, ETags, rate limits, retries, metrics.

One `Transport` per client. It sends one logical request at a time per call, and for it:
- answers a GET from its ETag cache when GitHub says 304 (a 304 costs no rate-limit budget);
- reads the X-RateLimit-* headers of every answer, paces requests when the budget runs low and
  waits out a spent budget (or fails with the time to retry, when that is too far away);
- waits as told on 403/429 rate limits (Retry-After, secondary limits);
- retries 5xx answers and network failures with jittered exponential backoff (tenacity), but
  only for requests that are safe to repeat: see `request(retry_unsafe=...)`;
- records a `github.request` metric and a debug log line per attempt (no header ever logged).
"""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from clambake_tui import __version__
from clambake_tui.errors import GitHubError
from clambake_tui.github.auth import HOW_TO_PROVIDE_A_TOKEN
from clambake_tui.github.errors import (
    GitHubAPIError,
    GitHubUnavailableError,
    RateLimitError,
    TokenNeededError,
)
from clambake_tui.github.pagination import next_page_url
from clambake_tui.logs import get_logger
from clambake_tui.metrics import record
from clambake_tui.model import RateLimit

__all__ = [
    "API_VERSION",
    "USER_AGENT",
    "ClientSettings",
    "Waiting",
    "Reply",
    "Transport",
    "WaitListener",
]

API_VERSION = "2022-11-28"
USER_AGENT = f"clambake-tui/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Timeouts, retry and wait bounds. Tests shrink the waits; nothing else needs to."""

    timeout: float = 30.0
    # Attempts per request (first try included) for 5xx, timeouts and rate-limit waits.
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    # The longest rate-limit wait accepted; anything longer fails at once saying when to retry.
    max_wait: float = 120.0
    # Secondary limit without Retry-After: GitHub asks for "at least a minute", then backoff.
    secondary_wait: float = 60.0
    # Below this share of the budget, requests are spread over what is left of the window.
    slow_down_fraction: float = 0.05
    pace_max_delay: float = 10.0
    # GitHub's secondary limits start at 100 concurrent requests; we stay far below.
    max_concurrent: int = 8
    etag_cache_size: int = 512
    # Writes that must not be applied twice (dispatch, create PR, comment, re-run): attempts,
    # each repeat only after checking that the previous one left no trace.
    unsafe_write_attempts: int = 3
    # Workflow dispatch: how long to look for the run it started.
    dispatch_visible_timeout: float = 60.0
    dispatch_poll_interval: float = 2.0
    # After an ambiguous 5xx, how long to look for a run before deciding none was created.
    dispatch_confirm_seconds: float = 6.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """The client is holding back until `until` (rate limit, backoff after an error, pacing)."""

    until: datetime
    reason: str

    def seconds_left(self, now: datetime | None = None) -> float:
        return max(0.0, (self.until - (now or datetime.now(UTC))).total_seconds())

    def describe(self, now: datetime | None = None) -> str:
        """`GitHub: rate limited, retrying in 20 s` for a status line."""
        return f"GitHub: {self.reason}, retrying in {round(self.seconds_left(now))} s"


WaitListener = Callable[[Waiting | None], None]


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer from GitHub (a 304 is returned as the cached 200 with `cached=True`)."""

    status: int
    headers: httpx.Headers
    content: bytes
    url: str
    cached: bool = False

    def json(self) -> Any:
        if not self.content:
            return None
        try:
            return jsonlib.loads(self.content)
        except ValueError:
            raise GitHubError(
                f"GitHub answered {self.status} with something that is not JSON "
                f"({_route_of(self.url)}); is [github] api_url a GitHub API?"
            ) from None

    @property
    def next_url(self) -> str | None:
        return next_page_url(self.headers.get("link"))


@dataclass(slots=True)
class _Cached:
    etag: str
    content: bytes
    headers: httpx.Headers


class _Retry(Exception):
    """An attempt that may be repeated; `wait` is what GitHub asked for (None: our backoff)."""

    def __init__(self, error: GitHubError, *, wait: float | None = None, reason: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait
        self.reason = reason


def _route_of(url: str) -> str:
    return urlsplit(url).path or "/"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S UTC")


def _in(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _rate_limit_from(headers: httpx.Headers) -> RateLimit | None:
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
        reset = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC)
    except (KeyError, ValueError):
        return None
    try:
        used = int(headers.get("x-ratelimit-used", limit - remaining))
    except ValueError:
        used = limit - remaining
    return RateLimit(
        limit=limit,
        remaining=remaining,
        reset=reset,
        used=used,
        resource=headers.get("x-ratelimit-resource", "core"),
    )


def _github_message(content: bytes) -> tuple[str, str]:
    """(message, detail) from an error body; detail joins the 422 `errors` entries."""
    try:
        body = jsonlib.loads(content) if content else None
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    raw = body.get("message")
    message = raw if isinstance(raw, str) else ""
    details: list[str] = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            if isinstance(item.get("message"), str):
                details.append(item["message"])
            else:
                parts = [str(item.get(k)) for k in ("resource", "field", "code") if item.get(k)]
                details.append(" ".join(parts))
        elif isinstance(item, str):
            details.append(item)
    return message, "; ".join(d for d in details if d)


class Transport:
    """httpx underneath, GitHub's manners on top. Owned and closed by GitHubClient."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        settings: ClientSettings | None = None,
        metrics_path: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        on_wait: WaitListener | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.settings = settings or ClientSettings()
        self.metrics_path = metrics_path
        self.on_wait = on_wait
        self.has_token = bool(token)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=self.api_url + "/",
            headers=headers,
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,
            transport=transport,
            event_hooks=dict(event_hooks) if event_hooks else None,
        )
        self._api_origin = self._origin(self.api_url)
        self._etags: OrderedDict[str, _Cached] = OrderedDict()
        self._slots = asyncio.Semaphore(self.settings.max_concurrent)
        self.rate_limit: RateLimit | None = None
        self.waiting: Waiting | None = None

    @staticmethod
    def _origin(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), port

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ waiting state

    def _set_waiting(self, waiting: Waiting | None) -> None:
        self.waiting = waiting
        if self.on_wait is not None:
            try:
                self.on_wait(waiting)
            except Exception:  # a listener's bug must not break a request
                log.warning("wait listener failed", exc_info=True)

    async def wait(self, seconds: float, reason: str) -> None:
        """Sleep, showing `reason` as the waiting state meanwhile."""
        if seconds <= 0:
            return
        self._set_waiting(Waiting(datetime.now(UTC) + timedelta(seconds=seconds), reason))
        log.info("github wait", extra={"seconds": round(seconds, 2), "reason": reason})
        try:
            await asyncio.sleep(seconds)
        finally:
            self._set_waiting(None)

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        url: str,
        *,
        route: str,
        what: str,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        retry_unsafe: bool = False,
        hints: Mapping[int, str] | None = None,
    ) -> Reply:
        """Send with retries; return 2xx/3xx answers, raise a GitHubError for the rest.

        `retry_unsafe`: the caller knows a repeated POST does no harm (adding labels twice adds
        them once). Otherwise a POST is repeated only when GitHub's answer proves it was not
        applied: a refused connection (never sent) or a rate-limit rejection (refused before
        processing). A 5xx or a timeout after sending is ambiguous and left to the caller.
        """
        method = method.upper()
        repeatable = method in IDEMPOTENT_METHODS or retry_unsafe
        settings = self.settings
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, settings.max_attempts)),
            wait=self._retry_wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._retry_sleep,
            before_sleep=self._before_retry_sleep,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._attempt(
                        method,
                        url,
                        attempt=attempts,
                        route=route,
                        what=what,
                        params=params,
                        json=json,
                        repeatable=repeatable,
                        hints=hints or {},
                    )
        except _Retry as exhausted:
            raise self._exhausted(exhausted, what, attempts) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _exhausted(self, exc: _Retry, what: str, attempts: int) -> GitHubError:
        error = exc.error
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(error, RateLimitError):
            return RateLimitError(f"{error} ({tries})", retry_at=error.retry_at)
        status = error.status if isinstance(error, GitHubUnavailableError) else None
        return GitHubUnavailableError(f"{error} {tries}; try again later", status=status)

    def _retry_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.wait is not None:
            return exc.wait
        backoff = wait_exponential_jitter(
            multiplier=self.settings.backoff_base,
            max=self.settings.backoff_max,
            jitter=self.settings.backoff_base,
        )
        return float(backoff(state))

    def _before_retry_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        reason = exc.reason if isinstance(exc, _Retry) else "error"
        self._set_waiting(Waiting(datetime.now(UTC) + timedelta(seconds=seconds), reason))
        log.info(
            "github retry",
            extra={"reason": reason, "seconds": round(seconds, 2), "attempt": state.attempt_number},
        )

    async def _retry_sleep(self, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
        finally:
            self._set_waiting(None)

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        attempt: int,
        route: str,
        what: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        repeatable: bool,
        hints: Mapping[int, str],
    ) -> Reply:
        request = self._http.build_request(
            method, url, params=dict(params) if params else None, json=json
        )
        key = str(request.url)
        cached = self._etags.get(key) if method == "GET" else None
        if cached is not None:
            request.headers["If-None-Match"] = cached.etag
        await self._pace(conditional=cached is not None, route=route)
        started = time.monotonic()
        async with self._slots:
            try:
                response = await self._http.send(request, stream=True)
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                self._note(method, route, None, False, started, error=type(exc).__name__)
                raise self._network_error(exc, what, repeatable) from None
        headers = response.headers
        limit = _rate_limit_from(headers)
        if limit is not None and limit.resource == "core":
            self.rate_limit = limit
        status = response.status_code
        self._note(method, route, status, status == 304, started)
        if status == 304 and cached is not None:
            self._etags.move_to_end(key)
            return Reply(200, cached.headers, cached.content, key, cached=True)
        if 200 <= status < 400:
            etag = headers.get("etag")
            if method == "GET" and status == 200 and etag:
                self._remember(key, _Cached(etag, content, headers))
            return Reply(status, headers, content, key)
        raise self._error(status, headers, content, what, repeatable, hints, attempt)

    def _remember(self, key: str, entry: _Cached) -> None:
        self._etags[key] = entry
        self._etags.move_to_end(key)
        while len(self._etags) > self.settings.etag_cache_size:
            self._etags.popitem(last=False)

    def _note(
        self,
        method: str,
        route: str,
        status: int | None,
        cached: bool,
        started: float,
        *,
        error: str | None = None,
    ) -> None:
        remaining = self.rate_limit.remaining if self.rate_limit else None
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "cached": cached,
            "remaining": remaining,
        }
        if error:
            fields["error"] = error
        record(self.metrics_path, "github.request", **fields)
        log.debug(
            "github request",
            extra={**fields, "elapsed_ms": round((time.monotonic() - started) * 1000, 1)},
        )

    async def _pace(self, *, conditional: bool, route: str) -> None:
        """Spread what is left of the budget over what is left of the window."""
        limit = self.rate_limit
        if limit is None or route == "/rate_limit":
            return
        now = datetime.now(UTC)
        window = (limit.reset - now).total_seconds()
        if window <= 0:
            return
        if limit.remaining <= 0:
            if window > self.settings.max_wait:
                more = "" if self.has_token else f" (a token raises it: {HOW_TO_PROVIDE_A_TOKEN})"
                raise RateLimitError(
                    f"GitHub's API budget ({limit.limit}/h) is spent; it resets at "
                    f"{_clock(limit.reset)} (in {_in(window)}); try again then{more}",
                    retry_at=limit.reset,
                )
            await self.wait(window + 1, "rate limit spent")
            return
        # A conditional request answered 304 costs nothing: no reason to hold it back.
        if conditional or limit.remaining > limit.limit * self.settings.slow_down_fraction:
            return
        delay = min(window / max(limit.remaining, 1), self.settings.pace_max_delay)
        await self.wait(delay, f"rate limit low ({limit.remaining} left)")

    def _network_error(self, exc: httpx.HTTPError, what: str, repeatable: bool) -> Exception:
        if isinstance(exc, httpx.TimeoutException):
            kind = "timed out"
        elif isinstance(exc, httpx.ConnectError):
            kind = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        else:
            kind = type(exc).__name__
        error = GitHubUnavailableError(f"cannot reach GitHub at {self.api_url} for {what} ({kind})")
        # A connection that never opened carried nothing: safe to repeat even a POST.
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if repeatable or never_sent:
            return _Retry(error, reason=f"GitHub {kind}")
        return error

    def _error(
        self,
        status: int,
        headers: httpx.Headers,
        content: bytes,
        what: str,
        repeatable: bool,
        hints: Mapping[int, str],
        attempt: int,
    ) -> Exception:
        message, detail = _github_message(content)
        limited = self._rate_limited(status, headers, message, attempt)
        if limited is not None:
            return limited
        if status >= 500:
            error = GitHubUnavailableError(
                f"GitHub said {status} for {what}" + (f": {message}" if message else ""),
                status=status,
            )
            if repeatable:
                return _Retry(error, reason=f"GitHub {status}")
            return error
        said = message or httpx.codes.get_reason_phrase(status) or "error"
        if detail and detail not in said:
            said = f"{said}: {detail}"
        hint = hints.get(status)
        if hint is None and status == 401:
            hint = f"{said}; the token was refused: check it, or {HOW_TO_PROVIDE_A_TOKEN}"
        if status in (401, 403, 404) and not self.has_token:
            text = (
                f"GitHub said {status} for {what}: {hint or said} "
                f"(no token was sent: {HOW_TO_PROVIDE_A_TOKEN})"
            )
            return TokenNeededError(text, status=status, github_message=message)
        text = f"GitHub said {status} for {what}: {hint or said}"
        return GitHubAPIError(text, status=status, github_message=message)

    def _rate_limited(
        self, status: int, headers: httpx.Headers, message: str, attempt: int
    ) -> Exception | None:
        """A rate-limit answer becomes a _Retry after the wait GitHub asks for, or a RateLimitError."""
        if status not in (403, 429):
            return None
        lowered = message.lower()
        retry_after = _parse_retry_after(headers.get("retry-after"))
        limit = _rate_limit_from(headers)
        spent = limit is not None and limit.remaining == 0
        secondary = "secondary rate limit" in lowered or "abuse" in lowered
        if not (retry_after is not None or spent or secondary or status == 429):
            return None
        now = datetime.now(UTC)
        if retry_after is not None:
            wait, reason = retry_after, "rate limited"
        elif spent and limit is not None:
            wait, reason = max(0.0, (limit.reset - now).total_seconds()) + 1, "rate limit spent"
        else:
            # "Wait at least a minute, then back off exponentially."
            wait = self.settings.secondary_wait * 2 ** (attempt - 1)
            reason = "secondary rate limit"
        retry_at = now + timedelta(seconds=wait)
        kind = "secondary rate limit" if secondary else "rate limit"
        error = RateLimitError(
            f"GitHub's {kind} ({status}); retry after {_clock(retry_at)} (in {_in(wait)})",
            retry_at=retry_at,
        )
        if wait > self.settings.max_wait:
            return error
        # Refused before processing: repeating is safe for every method.
        return _Retry(error, wait=wait, reason=reason)

    # ------------------------------------------------------------------ redirects (logs)

    async def download(
        self,
        location: str,
        *,
        route: str,
        what: str,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> bytes:
        """Fetch a redirect target (a logs zip or text), with the token only on GitHub's own host.

        `progress(received, size)` is called as the body arrives (`size` from Content-Length,
        None when the server does not say)."""
        request = self._http.build_request("GET", location)
        if self._origin(str(request.url)) != self._api_origin:
            # A pre-signed storage URL: the token must not travel to another host.
            request.headers.pop("Authorization", None)
        request.headers["Accept"] = "*/*"
        started = time.monotonic()
        try:
            response = await self._http.send(request, follow_redirects=True, stream=True)
            try:
                size = _content_length(response)
                tell = progress if response.status_code == 200 else None
                chunks: list[bytes] = []
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    if tell is not None:
                        tell(response.num_bytes_downloaded, size)
                content = b"".join(chunks)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            self._note("GET", route, None, False, started, error=type(exc).__name__)
            raise GitHubUnavailableError(
                f"cannot download the logs of {what} ({type(exc).__name__}); try again"
            ) from None
        self._note("GET", route, response.status_code, False, started)
        if response.status_code != 200:
            raise GitHubAPIError(
                f"GitHub's log storage said {response.status_code} for {what}; the link lives "
                "one minute, try again",
                status=response.status_code,
            )
        return content


def _content_length(response: httpx.Response) -> int | None:
    """The body's size on the wire, when the server says it."""
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
