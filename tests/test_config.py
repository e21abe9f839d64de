"""clambake.toml: defaults, exact error messages, environment overrides and `clambake config`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from clambake_tui.cli import main
from clambake_tui.config import KEYS, load_config, set_value, unset_value
from clambake_tui.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "clambake.toml"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository root that `clambake` commands find through CLAMBAKE_ROOT."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setenv("CLAMBAKE_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def shipped(repo: Path) -> Path:
    """A copy of the commented example clambake.toml this repository ships."""
    target = repo / "clambake.toml"
    shutil.copyfile(SHIPPED, target)
    return target


def shipped_with(repo: Path, old: str, new: str) -> Path:
    """The shipped example with one line replaced."""
    text = SHIPPED.read_text()
    assert old in text
    path = repo / "clambake.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, start: str) -> int:
    return next(
        n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start)
    )


def clambake(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- loading


def test_missing_file_means_every_default(tmp_path: Path) -> None:
    config = load_config(tmp_path / "clambake.toml", env={})
    for spec in KEYS.values():
        assert getattr(getattr(config, spec.section), spec.name) == spec.default, spec.dotted
    assert config.warnings == ()


def test_no_path_at_all_means_every_default() -> None:
    assert load_config(None, env={}).agents.max_concurrent == 5


def test_the_shipped_example_loads_cleanly_with_the_defaults() -> None:
    config = load_config(SHIPPED, env={})
    assert config.warnings == ()
    for spec in KEYS.values():
        assert getattr(getattr(config, spec.section), spec.name) == spec.default, spec.dotted


def test_bad_type_names_file_line_key_expected_and_value(repo: Path) -> None:
    path = shipped_with(repo, "max_concurrent = 5", 'max_concurrent = "five"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    line = line_of(path, "max_concurrent")
    assert str(caught.value) == (
        f'clambake.toml:{line}: key agents.max_concurrent must be an integer from 1 to 64, got "five"'
    )
    assert caught.value.exit_code == 2


def test_out_of_range_names_the_range(repo: Path) -> None:
    path = shipped_with(repo, "max_concurrent = 5", "max_concurrent = 65")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    line = line_of(path, "max_concurrent")
    assert str(caught.value) == (
        f"clambake.toml:{line}: key agents.max_concurrent must be an integer from 1 to 64, got 65"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "enabled = true",
            'enabled = "yes"',
            'key agents.enabled must be true or false, got "yes"',
        ),
        (
            'permission_mode = "acceptEdits"',
            'permission_mode = "yolo"',
            'key agents.permission_mode must be one of "acceptEdits", "bypassPermissions", '
            '"default", "dontAsk", "plan", "auto", "manual", got "yolo"',
        ),
        (
            'api_url = "https://api.github.com"',
            'api_url = "ftp://example.com"',
            'key github.api_url must be an http(s) URL, got "ftp://example.com"',
        ),
        (
            "extra_args = []",
            "extra_args = [1, 2]",
            "key agents.extra_args must be a list of strings, got [1, 2]",
        ),
        (
            "refresh_seconds = 2.0",
            "refresh_seconds = 0.1",
            "key dashboard.refresh_seconds must be a number from 0.5 to 3600, got 0.1",
        ),
        (
            "timeout_minutes = 30",
            "timeout_minutes = 1.5",
            "key agents.timeout_minutes must be an integer from 1 to 1440, got 1.5",
        ),
    ],
)
def test_each_kind_of_bad_value_says_what_is_expected(
    repo: Path, old: str, new: str, expected: str
) -> None:
    path = shipped_with(repo, old, new)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"clambake.toml:{line_of(path, new)}: {expected}"


def test_unknown_key_warns_with_did_you_mean_and_keeps_loading(repo: Path) -> None:
    path = shipped_with(repo, "max_concurrent = 5", "max_concurent = 3")
    config = load_config(path, env={})
    line = line_of(path, "max_concurent")
    assert config.warnings == (
        f"clambake.toml:{line}: unknown key agents.max_concurent (did you mean agents.max_concurrent?)",
    )
    assert config.agents.max_concurrent == 5


def test_unknown_section_warns_with_did_you_mean(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_text("[agent]\nenabled = false\n")
    config = load_config(path, env={})
    assert config.warnings == ("clambake.toml:1: unknown section [agent] (did you mean agents?)",)
    assert config.agents.enabled is True


def test_a_section_that_is_not_a_table_is_an_error(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_text("agents = 5\n")
    with pytest.raises(
        ConfigError, match=r"^clambake\.toml: agents must be a table \(\[agents\]\)$"
    ):
        load_config(path, env={})


def test_broken_toml_syntax_names_the_line(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_text("[agents]\nmax_concurrent = 3\nenabled = \n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert re.fullmatch(r"clambake\.toml:3: invalid TOML: .+ \(column \d+\)", str(caught.value))


def test_a_file_that_is_not_utf8_is_a_clear_error(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_bytes(b"[agents]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"^clambake\.toml: not UTF-8 text; save it as UTF-8$"):
        load_config(path, env={})


# ---------------------------------------------------------------- environment overrides


def test_environment_override_wins_over_the_file(shipped: Path) -> None:
    config = load_config(shipped, env={"CLAMBAKE_AGENTS__MAX_CONCURRENT": "3"})
    assert config.agents.max_concurrent == 3


@pytest.mark.parametrize(
    ("name", "raw", "key", "expected"),
    [
        ("CLAMBAKE_AGENTS__ENABLED", "false", "enabled", False),
        ("CLAMBAKE_AGENTS__MODEL", "sonnet", "model", "sonnet"),
        ("CLAMBAKE_AGENTS__ALLOWED_TOOLS", "Read,Edit", "allowed_tools", ["Read", "Edit"]),
        (
            "CLAMBAKE_AGENTS__ALLOWED_TOOLS",
            '["Read", "Bash(git:*)"]',
            "allowed_tools",
            ["Read", "Bash(git:*)"],
        ),
        ("CLAMBAKE_AGENTS__TERMINATE_GRACE_SECONDS", "2.5", "terminate_grace_seconds", 2.5),
    ],
)
def test_environment_overrides_parse_each_kind(
    name: str, raw: str, key: str, expected: object
) -> None:
    config = load_config(None, env={name: raw})
    assert getattr(config.agents, key) == expected


def test_bad_environment_override_names_the_variable(shipped: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(shipped, env={"CLAMBAKE_AGENTS__MAX_CONCURRENT": "many"})
    assert str(caught.value) == (
        'CLAMBAKE_AGENTS__MAX_CONCURRENT: key agents.max_concurrent must be an integer from 1 to 64, got "many"'
    )


def test_unknown_environment_override_warns_with_did_you_mean() -> None:
    config = load_config(None, env={"CLAMBAKE_AGENTS__MAX_CONCURENT": "3"})
    assert config.warnings == (
        "environment: unknown override CLAMBAKE_AGENTS__MAX_CONCURENT "
        "(did you mean CLAMBAKE_AGENTS__MAX_CONCURRENT?)",
    )


def test_override_names_follow_section_and_key() -> None:
    assert KEYS["agents.max_concurrent"].env == "CLAMBAKE_AGENTS__MAX_CONCURRENT"
    assert KEYS["github_actions.enabled"].env == "CLAMBAKE_GITHUB_ACTIONS__ENABLED"


# ---------------------------------------------------------------- the command line


def test_cli_bad_type_is_one_line_and_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shipped_with(repo, "max_concurrent = 5", 'max_concurrent = "five"')
    code, out, err = clambake(capsys, "config", "show")
    line = line_of(path, "max_concurrent")
    assert code == 2 and out == ""
    assert err == (
        f"clambake: error: clambake.toml:{line}: key agents.max_concurrent must be an integer "
        'from 1 to 64, got "five"\n'
    )


def test_cli_unknown_key_warns_on_stderr_and_still_answers(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shipped_with(repo, "max_concurrent = 5", "max_concurent = 3")
    code, out, err = clambake(capsys, "config", "get", "agents.max_concurrent")
    assert (code, out) == (0, "5\n")
    line = line_of(path, "max_concurent")
    assert err == (
        f"clambake: warning: clambake.toml:{line}: unknown key agents.max_concurent "
        "(did you mean agents.max_concurrent?)\n"
    )


def test_cli_broken_toml_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "clambake.toml").write_text("[agents\n")
    code, _, err = clambake(capsys, "config", "show")
    assert code == 2
    assert err.startswith("clambake: error: clambake.toml:1: invalid TOML: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_environment_override(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_AGENTS__MAX_CONCURRENT", "3")
    assert clambake(capsys, "config", "get", "agents.max_concurrent") == (0, "3\n", "")
    monkeypatch.setenv("CLAMBAKE_AGENTS__MAX_CONCURRENT", "0")
    code, _, err = clambake(capsys, "config", "get", "agents.max_concurrent")
    assert code == 2
    assert err == (
        "clambake: error: CLAMBAKE_AGENTS__MAX_CONCURRENT: key agents.max_concurrent must be an "
        "integer from 1 to 64, got 0\n"
    )


def test_config_get_prints_the_effective_value(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clambake(capsys, "config", "get", "agents.claude_code_path") == (0, "claude\n", "")
    assert clambake(capsys, "config", "get", "agents.enabled") == (0, "true\n", "")
    assert clambake(capsys, "config", "get", "agents.model") == (0, "(unset)\n", "")
    assert clambake(capsys, "config", "get", "agents.allowed_tools")[1] == (
        '["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)"]\n'
    )


def test_config_get_unknown_key_suggests_one(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = clambake(capsys, "config", "get", "agents.max_concurent")
    assert code == 2
    assert err == (
        "clambake: error: unknown key agents.max_concurent (did you mean agents.max_concurrent?); "
        "`clambake config show` lists them\n"
    )


def test_config_show_lists_every_key_once_by_section(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = clambake(capsys, "config", "show")
    assert code == 0
    lines = [line for line in out.splitlines() if " = " in line]
    assert len(lines) == len(KEYS)
    assert out.startswith("[agents]\nenabled = true\n")
    assert "\n[github_actions]\nenabled = true\n" in out
    assert "model = (unset)" in out


def test_config_show_json_has_every_section_and_key(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    code, out, _ = clambake(capsys, "config", "show", "--json")
    data = json.loads(out)
    assert code == 0
    assert {f"{s}.{k}" for s, table in data.items() for k in table} == set(KEYS)
    assert data["agents"]["max_concurrent"] == 5


def test_config_path_says_when_the_file_is_missing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = repo / "clambake.toml"
    assert clambake(capsys, "config", "path") == (
        0,
        f"{target}  (does not exist: every key has its default)\n",
        "",
    )
    target.write_text("")
    assert clambake(capsys, "config", "path") == (0, f"{target}\n", "")


def test_config_path_follows_the_config_option(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[agents]\nmax_concurrent = 9\n")
    assert clambake(capsys, "--config", str(other), "config", "path")[1] == f"{other}\n"
    assert (
        clambake(capsys, "--config", str(other), "config", "get", "agents.max_concurrent")[1]
        == "9\n"
    )


# ---------------------------------------------------------------- config set / unset


def changed_lines(before: bytes, after: bytes) -> list[tuple[bytes, bytes]]:
    old, new = before.split(b"\n"), after.split(b"\n")
    assert len(old) == len(new), "lines were added or removed"
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


@pytest.mark.parametrize("key", ["agents.enabled", "github_actions.enabled"])
def test_set_on_the_shipped_example_changes_exactly_one_line(
    shipped: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    before = shipped.read_bytes()
    code, out, err = clambake(capsys, "config", "set", key, "false")
    assert (code, err) == (0, "")
    assert out == f"{key} = false  ({shipped})\n"
    assert changed_lines(before, shipped.read_bytes()) == [(b"enabled = true", b"enabled = false")]
    assert clambake(capsys, "config", "get", key)[1] == "false\n"


def test_set_keeps_a_trailing_comment_on_the_line(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_text("[agents]\nmax_concurrent = 5   # two cores here\n")
    set_value(path, "agents.max_concurrent", "2")
    assert path.read_text() == "[agents]\nmax_concurrent = 2   # two cores here\n"


def test_an_invalid_set_is_refused_and_the_file_is_unchanged(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = shipped.read_bytes()
    code, out, err = clambake(capsys, "config", "set", "agents.max_concurrent", "0")
    assert (code, out) == (2, "")
    assert err == (
        "clambake: error: refused: key agents.max_concurrent must be an integer from 1 to 64, "
        "got 0; clambake.toml is unchanged\n"
    )
    assert shipped.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("agents.enabled", "maybe"),
        ("agents.permission_mode", "yolo"),
        ("github.api_url", "not-a-url"),
        ("agents.no_such_key", "1"),
    ],
)
def test_other_invalid_sets_leave_the_bytes_alone(shipped: Path, key: str, value: str) -> None:
    before = shipped.read_bytes()
    with pytest.raises(ConfigError):
        set_value(shipped, key, value)
    assert shipped.read_bytes() == before


def test_set_on_a_file_with_broken_toml_is_refused_untouched(repo: Path) -> None:
    path = repo / "clambake.toml"
    path.write_text("[agents\nmax_concurrent = 5\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"^clambake\.toml:1: invalid TOML: .*fix it before"):
        set_value(path, "agents.max_concurrent", "3")
    assert path.read_bytes() == before


def test_set_on_a_missing_file_creates_it(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "clambake.toml"
    code, _, _ = clambake(capsys, "config", "set", "agents.max_concurrent", "7")
    assert code == 0
    assert path.read_text() == "[agents]\nmax_concurrent = 7\n"
    assert load_config(path, env={}).agents.max_concurrent == 7


def test_set_writes_atomically_by_replacing_the_file(shipped: Path) -> None:
    os.chmod(shipped, 0o600)
    inode = shipped.stat().st_ino
    set_value(shipped, "agents.max_concurrent", "3")
    stat = shipped.stat()
    assert stat.st_ino != inode  # a new file renamed over the old one, never rewritten in place
    assert stat.st_mode & 0o777 == 0o600  # and it keeps the file's permissions
    assert sorted(p.name for p in shipped.parent.iterdir()) == ["clambake.toml"]  # no temp left


def test_set_that_changes_nothing_does_not_rewrite(shipped: Path) -> None:
    inode = shipped.stat().st_ino
    set_value(shipped, "agents.max_concurrent", "5")
    assert shipped.stat().st_ino == inode


def test_set_of_a_commented_out_key_adds_it_to_its_section(shipped: Path) -> None:
    set_value(shipped, "agents.model", '"sonnet"')
    config = load_config(shipped, env={})
    assert config.agents.model == "sonnet" and config.warnings == ()
    assert SHIPPED.read_text().count("\n") + 1 == shipped.read_text().count("\n")


def test_set_parses_values_per_kind(shipped: Path) -> None:
    assert set_value(shipped, "agents.allowed_tools", "Read,Edit") == ["Read", "Edit"]
    assert set_value(shipped, "agents.terminate_grace_seconds", "5") == 5.0
    assert set_value(shipped, "agents.claude_code_path", "/opt/claude/bin/claude") == (
        "/opt/claude/bin/claude"
    )
    config = load_config(shipped, env={})
    assert config.agents.allowed_tools == ["Read", "Edit"]
    assert config.agents.terminate_grace_seconds == 5.0


def test_unset_removes_the_key_so_the_default_applies(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_value(shipped, "agents.max_concurrent", "3")
    code, out, _ = clambake(capsys, "config", "unset", "agents.max_concurrent")
    assert code == 0
    assert out == f"agents.max_concurrent unset: the default applies  ({shipped})\n"
    assert not re.search(r"^max_concurrent\s*=", shipped.read_text(), re.MULTILINE)
    assert load_config(shipped, env={}).agents.max_concurrent == 5


def test_unset_on_a_missing_file_or_key_is_a_no_op(repo: Path) -> None:
    path = repo / "clambake.toml"
    unset_value(path, "agents.model")
    assert not path.exists()
    path.write_text("[agents]\nenabled = false\n")
    unset_value(path, "agents.model")
    assert path.read_text() == "[agents]\nenabled = false\n"
