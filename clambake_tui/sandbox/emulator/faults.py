"""Injected faults: 5xx bursts, slow answers, held connections, rate limits, Actions outages."""

from __future__ import annotations

import enum
import re
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "FaultKind", "FaultPlan"]


class FaultKind(enum.StrEnum):
    ERROR = "error"  # answer `status` (5xx) with GitHub's error body
    DELAY = "delay"  # wait `seconds`, then answer normally
    TIMEOUT = "timeout"  # hold the connection `seconds` without answering, then drop it
    SECONDARY_RATE_LIMIT = "secondary_rate_limit"  # 403 (or `status`) + Retry-After
    TOO_MANY_REQUESTS = "too_many_requests"  # 429 + Retry-After
    PRIMARY_RATE_LIMIT = "primary_rate_limit"  # 403 (or 429), x-ratelimit-remaining: 0


@dataclass
class Fault:
    """One rule: which requests it hits (method, path regex), what it does, how many times.

    `times=None` means every matching request; `skip` lets that many matching requests through
    first. `path` is a regular expression searched in the request path (query excluded).
    """

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    times: int | None = None
    skip: int = 0
    status: int | None = None
    seconds: float = 0.0
    retry_after: int | None = None
    hits: int = field(default=0, compare=False)
    seen: int = field(default=0, compare=False)

    # constructors ------------------------------------------------------------------------
    @classmethod
    def burst(
        cls,
        status: int = 502,
        times: int | None = 3,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(FaultKind.ERROR, method=method, path=path, times=times, status=status)

    @classmethod
    def slow(
        cls,
        seconds: float,
        *,
        times: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(FaultKind.DELAY, method=method, path=path, times=times, seconds=seconds)

    @classmethod
    def timeout(
        cls,
        seconds: float = 30.0,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(FaultKind.TIMEOUT, method=method, path=path, times=times, seconds=seconds)

    @classmethod
    def secondary_rate_limit(
        cls,
        retry_after: int | None = 60,
        *,
        status: int = 403,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(
            FaultKind.SECONDARY_RATE_LIMIT,
            method=method,
            path=path,
            times=times,
            status=status,
            retry_after=retry_after,
        )

    @classmethod
    def too_many_requests(
        cls,
        retry_after: int | None = 2,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(
            FaultKind.TOO_MANY_REQUESTS,
            method=method,
            path=path,
            times=times,
            status=429,
            retry_after=retry_after,
        )

    @classmethod
    def primary_rate_limit(
        cls,
        *,
        status: int = 403,
        times: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        return cls(
            FaultKind.PRIMARY_RATE_LIMIT, method=method, path=path, times=times, status=status
        )

    @classmethod
    def actions_down(cls, status: int = 503, *, times: int | None = None) -> Fault:
        """Dispatches fail as when GitHub Actions has an outage."""
        return cls(
            FaultKind.ERROR,
            method="POST",
            path=r"/actions/workflows/[^/]+/dispatches$",
            times=times,
            status=status,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """From `{"kind": "error", "status": 502, "times": 3, "path": "/issues", ...}`."""
        known = {"kind", "method", "path", "times", "skip", "status", "seconds", "retry_after"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        kind = data.get("kind")
        if kind == "actions_down":
            return cls.actions_down(int(data.get("status", 503)), times=data.get("times"))
        try:
            fault_kind = FaultKind(str(kind))
        except ValueError:
            choices = ", ".join([k.value for k in FaultKind] + ["actions_down"])
            raise ValueError(f"unknown fault kind {kind!r} (one of: {choices})") from None
        if data.get("path") is not None:
            re.compile(str(data["path"]))
        return cls(
            fault_kind,
            method=data.get("method"),
            path=data.get("path"),
            times=data.get("times"),
            skip=int(data.get("skip", 0)),
            status=data.get("status"),
            seconds=float(data.get("seconds", 0.0)),
            retry_after=data.get("retry_after"),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times


class FaultPlan:
    """The active faults, consulted once per request, first match wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f is not fault]

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.spent or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.hits += 1
                return fault
        return None
