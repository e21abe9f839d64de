"""docs/configuration.md and the code agree on every key, default, range and override."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomlkit

from clambake_tui.config import KEYS, KeySpec

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
ROW = re.compile(r"^\|\s*`(?P<key>[a-z_]+\.[a-z_]+)`\s*\|(?P<rest>.*)\|\s*$")


def documented_rows() -> dict[str, list[str]]:
    """key -> [default, allowed values, environment override, meaning] from the guide's tables."""
    rows: dict[str, list[str]] = {}
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if not match:
            continue
        key = match["key"]
        assert key not in rows, f"{key} is documented twice"
        rows[key] = [cell.strip() for cell in match["rest"].split(" | ")]
    return rows


def shown_default(spec: KeySpec) -> str:
    return "unset" if spec.default is None else f"`{tomlkit.item(spec.default).as_string()}`"


def test_every_key_in_the_code_is_in_the_guide() -> None:
    missing = sorted(set(KEYS) - set(documented_rows()))
    assert not missing, f"add these keys to docs/configuration.md: {missing}"


def test_every_key_in_the_guide_exists_in_the_code() -> None:
    stale = sorted(set(documented_rows()) - set(KEYS))
    assert not stale, f"docs/configuration.md documents keys the code does not have: {stale}"


@pytest.mark.parametrize("key", sorted(KEYS))
def test_default_range_and_override_agree(key: str) -> None:
    spec = KEYS[key]
    row = documented_rows().get(key)
    if row is None:
        pytest.fail(f"{key} is not documented")
    assert len(row) == 4, f"{key}: expected 5 columns, got {row}"
    default, allowed, env, meaning = row
    assert default == shown_default(spec), f"{key}: default"
    assert allowed == spec.describe(), f"{key}: allowed values"
    assert env == f"`{spec.env}`", f"{key}: environment override"
    assert meaning, f"{key}: say what it means"


def test_keys_are_listed_under_their_own_section() -> None:
    section = None
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"^### \[(\w+)\]$", line):
            section = heading[1]
        elif match := ROW.match(line):
            assert match["key"].split(".")[0] == section, f"{match['key']} is under [{section}]"


def test_the_shipped_example_only_uses_documented_keys() -> None:
    import tomllib

    example = tomllib.loads((GUIDE.parents[1] / "clambake.toml").read_text())
    used = {f"{section}.{key}" for section, table in example.items() for key in table}
    assert used <= set(documented_rows())
