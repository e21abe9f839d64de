"""The supervisor's limits in seconds, derived from `[agents]` config (tests may pass smaller ones)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from clambake_tui.config import AgentsConfig

__all__ = ["Limits", "LOG_MAX_BYTES"]

# Per stream (stdout, stderr) an agent keeps the live file plus one rotated copy, so an agent's
# logs never take more than 4 x this on disk however much it prints.
LOG_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Every time and count the supervisor enforces, in seconds.

    The user-facing config speaks in minutes; the supervisor works in seconds so that tests and
    benchmarks can use small values without touching clambake.toml.
    """

    max_concurrent: int = 5
    timeout_s: float = 30 * 60.0
    inactivity_warning_s: float = 5 * 60.0
    terminate_grace_s: float = 10.0
    # An agent that printed its `result` line but does not exit is ended after this grace.
    linger_grace_s: float = 5.0
    max_restarts: int = 2
    # Restart backoff: base * 2**n, capped; reset after a run that stayed up `healthy_s`.
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    healthy_s: float = 30.0
    log_max_bytes: int = LOG_MAX_BYTES
    # How often the watcher reads the growing log and samples the process tree.
    poll_s: float = 0.1
    sample_s: float = 2.0

    @classmethod
    def from_config(cls, agents: AgentsConfig, **overrides: Any) -> Limits:
        base = cls(
            max_concurrent=agents.max_concurrent,
            timeout_s=agents.timeout_minutes * 60.0,
            inactivity_warning_s=agents.inactivity_warning_minutes * 60.0,
            terminate_grace_s=float(agents.terminate_grace_seconds),
            max_restarts=agents.max_restarts,
        )
        return replace(base, **overrides) if overrides else base

    def backoff(self, restarts: int) -> float:
        """Seconds to wait before restart number `restarts` (1-based)."""
        return float(min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, restarts - 1))))

    def timeout_text(self) -> str:
        """'30 min' or '2 s': how the timeout reads in a Failed status."""
        if self.timeout_s >= 60 and self.timeout_s % 60 == 0:
            return f"{int(self.timeout_s // 60)} min"
        return f"{self.timeout_s:g} s"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)
