"""docs/metrics.md and the code agree: every JSON key, every event and its fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clambake_tui import metrics
from clambake_tui.metrics import FAILURE_MODES, compute_metrics

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def flatten(value: Any, prefix: str = "") -> set[str]:
    """Dotted key paths; list items as `[]`; free-form objects (failure_modes) stop at the key."""
    keys: set[str] = set()
    if isinstance(value, dict) and not prefix.endswith("failure_modes"):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            keys.add(path)
            keys |= flatten(inner, path)
    elif isinstance(value, list):
        for item in value:
            keys |= {k for k in flatten(item, f"{prefix}[]") if k != f"{prefix}[]"}
    return keys


def leaves(keys: set[str]) -> set[str]:
    return {k for k in keys if not any(other.startswith((k + ".", k + "[]")) for other in keys)}


def real_json() -> dict[str, Any]:
    """The JSON of metrics computed over one event of each kind (so lists are not empty)."""
    events = [
        {
            "ts": T0.isoformat(),
            "event": "agent.finished",
            "agent_id": "agent001",
            "state": "completed",
            "cpu_peak": 1.0,
        }
    ]
    return compute_metrics(events, T0, None, active=0).to_json()


def documented_keys() -> set[str]:
    keys = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^\| `([a-z_0-9.\[\]]+)` \| (integer|number|string|object)", line):
            keys.add(match[1])
    return keys


def test_every_json_key_is_documented_and_every_documented_key_exists() -> None:
    produced = leaves(flatten(real_json()))
    documented = documented_keys()
    assert sorted(produced - documented) == [], "document these keys in docs/metrics.md"
    assert sorted(documented - produced) == [], "docs/metrics.md lists keys the code lacks"


def test_the_example_has_the_shape_of_the_real_output() -> None:
    block = re.search(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "docs/metrics.md has a JSON example"
    example = json.loads(block[1])
    assert flatten(example) == flatten(real_json())
    assert example["schema_version"] == metrics.SCHEMA_VERSION
    assert tuple(example["agents"]["failure_modes"]) == FAILURE_MODES


def vocabulary_in_code() -> dict[str, set[str]]:
    """Event -> fields, from the recorder's docstring (the list other modules follow)."""
    doc = metrics.__doc__ or ""
    found: dict[str, set[str]] = {}
    current = None
    for line in doc.splitlines():
        if match := re.match(r"^- (\S+)\s+(.*)$", line):
            current = match[1]
            found[current] = set()
            rest = match[2]
        elif current and line.startswith(" " * 10) and line.strip():
            rest = line
        else:
            current = None
            continue
        found[current] |= {re.sub(r"\s*\(.*", "", f).strip() for f in rest.split(",") if f.strip()}
    return found


def vocabulary_in_doc() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## The events\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+\.[a-z_]+)` \| [^|]+ \| (.+) \|$", line)
        if match and "`" in match[2]:
            found[match[1]] = set(re.findall(r"`([a-z_]+)`", re.sub(r"\(.*?\)", "", match[2])))
    return found


def test_the_documented_events_match_the_recorders_vocabulary() -> None:
    in_code = vocabulary_in_code()
    assert len(in_code) == 9
    assert vocabulary_in_doc() == in_code


def test_the_failure_modes_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for mode in FAILURE_MODES:
        assert f"`{mode}`" in text
