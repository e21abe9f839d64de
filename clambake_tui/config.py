"""clambake.toml: defaults, loading with clear errors, environment overrides, `config set`."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
import tomlkit.items

from clambake_tui.atomic import atomic_write_text
from clambake_tui.errors import ConfigError

__all__ = [
    "AgentsConfig",
    "GitHubConfig",
    "GitHubActionsConfig",
    "BundlingConfig",
    "DashboardConfig",
    "Config",
    "KeySpec",
    "KEYS",
    "ENV_PREFIX",
    "load_config",
    "get_value",
    "set_value",
    "unset_value",
    "infer_owner_repo",
    "parse_remote_url",
]

ENV_PREFIX = "CLAMBAKE_"


def _key(
    default: Any,
    doc: str,
    *,
    kind: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    optional: bool = False,
) -> Any:
    meta = {
        "kind": kind,
        "doc": doc,
        "min": min,
        "max": max,
        "choices": choices,
        "optional": optional,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


# The choices Claude Code's --permission-mode lists, plus "default", which it still accepts.
PERMISSION_MODES = (
    "acceptEdits",
    "bypassPermissions",
    "default",
    "dontAsk",
    "plan",
    "auto",
    "manual",
)


@dataclass(frozen=True)
class AgentsConfig:
    enabled: bool = _key(True, "Allow spawning agents at all (the rollback lever).", kind="bool")
    claude_code_path: str = _key(
        "claude", "The Claude Code executable (a name on PATH or a path).", kind="str"
    )
    max_concurrent: int = _key(
        5,
        "Agents allowed to run at once, across every clambake process.",
        kind="int",
        min=1,
        max=64,
    )
    timeout_minutes: int = _key(
        30, "Wall time after which an agent is ended as failed.", kind="int", min=1, max=1440
    )
    inactivity_warning_minutes: int = _key(
        5, "Silence after which an agent gets a warning.", kind="int", min=1, max=1440
    )
    cleanup_on_failure: bool = _key(
        True,
        "Remove a failed agent's worktree when it holds no commits and no uncommitted change.",
        kind="bool",
    )
    max_restarts: int = _key(
        2, "Restarts of a failed agent (exponential backoff).", kind="int", min=0, max=100
    )
    terminate_grace_seconds: float = _key(
        10.0, "Seconds between SIGTERM and SIGKILL.", kind="float", min=0, max=600
    )
    model: str | None = _key(
        None, "--model passed to Claude Code (unset: its default).", kind="str", optional=True
    )
    max_budget_usd: float | None = _key(
        None,
        "--max-budget-usd per agent run (unset: no cap).",
        kind="float",
        min=0.01,
        max=10000,
        optional=True,
    )
    permission_mode: str = _key(
        "acceptEdits", "--permission-mode for Claude Code.", kind="str", choices=PERMISSION_MODES
    )
    allowed_tools: list[str] = _key(
        ["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)"],
        "--allowedTools for Claude Code.",
        kind="list[str]",
    )
    extra_args: list[str] = _key(
        [], "Extra arguments appended to the claude command line.", kind="list[str]"
    )


@dataclass(frozen=True)
class GitHubConfig:
    owner: str | None = _key(
        None, "Repository owner (unset: read from the origin remote).", kind="str", optional=True
    )
    repo: str | None = _key(
        None, "Repository name (unset: read from the origin remote).", kind="str", optional=True
    )
    api_url: str = _key(
        "https://api.github.com",
        "REST API base URL (GitHub Enterprise: https://HOST/api/v3).",
        kind="url",
    )
    default_branch: str | None = _key(
        None, "Base branch (unset: ask the API, then origin/HEAD).", kind="str", optional=True
    )


@dataclass(frozen=True)
class GitHubActionsConfig:
    enabled: bool = _key(True, "Bundle on GitHub Actions (false: bundle locally).", kind="bool")
    bundling_workflow: str = _key(
        ".github/workflows/clambake-bundling.yml", "Path of the bundling workflow.", kind="str"
    )
    manual_trigger_enabled: bool = _key(
        True,
        "Allow dispatching the bundling workflow by hand (`b`, --trigger-bundle).",
        kind="bool",
    )
    workflow_timeout_minutes: int = _key(
        15, "timeout-minutes of the bundling job.", kind="int", min=1, max=360
    )


@dataclass(frozen=True)
class BundlingConfig:
    schedule_minutes: int = _key(
        10, "Minutes between train departures (:00, :10, ... UTC).", kind="int", min=1, max=1440
    )
    fallback_local: bool = _key(
        True, "Bundle locally when Actions is unreachable or disabled.", kind="bool"
    )


@dataclass(frozen=True)
class DashboardConfig:
    refresh_seconds: float = _key(
        2.0,
        "Seconds between refreshes of GitHub data in the dashboard.",
        kind="float",
        min=0.5,
        max=3600,
    )
    log_tail_lines: int = _key(200, "Log lines kept per agent pane.", kind="int", min=10, max=10000)


SECTIONS: dict[str, type[Any]] = {
    "agents": AgentsConfig,
    "github": GitHubConfig,
    "github_actions": GitHubActionsConfig,
    "bundling": BundlingConfig,
    "dashboard": DashboardConfig,
}


@dataclass(frozen=True)
class Config:
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    github: GitHubConfig = field(default_factory=GitHubConfig)
    github_actions: GitHubActionsConfig = field(default_factory=GitHubActionsConfig)
    bundling: BundlingConfig = field(default_factory=BundlingConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key of clambake.toml, as documented in docs/configuration.md."""

    section: str
    name: str
    kind: str
    default: Any
    doc: str
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    optional: bool

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}__{self.name.upper()}"

    def describe(self) -> str:
        """'an integer from 1 to 64', 'true or false', ..."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "list[str]":
            return "a list of strings"
        if self.kind == "url":
            return "an http(s) URL"
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        if self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            lo, hi = _fmt_num(self.min), _fmt_num(self.max)
            if lo is not None and hi is not None:
                return f"{noun} from {lo} to {hi}"
            return noun
        return "a string"


def _fmt_num(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def _collect_keys() -> dict[str, KeySpec]:
    keys: dict[str, KeySpec] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default: Any = f.default
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            m = f.metadata
            spec = KeySpec(
                section,
                f.name,
                m["kind"],
                default,
                m["doc"],
                m["min"],
                m["max"],
                m["choices"],
                m["optional"],
            )
            keys[spec.dotted] = spec
    return keys


KEYS: dict[str, KeySpec] = _collect_keys()


# ---------------------------------------------------------------- validation


class _Invalid(Exception):
    pass


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _coerce(spec: KeySpec, value: Any) -> Any:
    """Return the value in its Python form, or raise _Invalid."""
    kind = spec.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _Invalid
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid
        _check_range(spec, value)
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid
        _check_range(spec, value)
        return float(value)
    if kind == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Invalid
        return [str(v) for v in value]
    if not isinstance(value, str):
        raise _Invalid
    text = str(value)
    if kind == "url" and not re.match(r"^https?://[^\s/]+", text):
        raise _Invalid
    if spec.choices and text not in spec.choices:
        raise _Invalid
    if not text and not spec.optional and spec.kind == "str":
        raise _Invalid
    return text


def _check_range(spec: KeySpec, value: float) -> None:
    if spec.min is not None and value < spec.min:
        raise _Invalid
    if spec.max is not None and value > spec.max:
        raise _Invalid


def _problem(spec: KeySpec, value: Any) -> str:
    return f"key {spec.dotted} must be {spec.describe()}, got {_show(value)}"


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """1-based line of `[section]` (or of `key` inside it) in the file's text."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(section) + r"\s*\]\s*(#.*)?$")
    any_header = re.compile(r"^\s*\[")
    in_section = False
    for number, line in enumerate(lines, start=1):
        if header.match(line):
            if key is None:
                return number
            in_section = True
            continue
        if in_section and any_header.match(line):
            in_section = False
        if key is not None:
            dotted = re.compile(
                r"^\s*" + re.escape(section) + r"\s*\.\s*" + re.escape(key) + r"\s*="
            )
            if dotted.match(line):
                return number
            if in_section and re.match(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=", line):
                return number
    return None


def _where(path: Path | None, text: str, section: str, key: str | None = None) -> str:
    name = path.name if path else "clambake.toml"
    line = _line_of(text, section, key) if text else None
    return f"{name}:{line}" if line else name


def _build(
    data: Mapping[str, Any],
    *,
    path: Path | None,
    text: str,
    env: Mapping[str, str],
) -> Config:
    warnings: list[str] = []
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for section, table in data.items():
        if section not in SECTIONS:
            hint = _did_you_mean(section, list(SECTIONS))
            warnings.append(f"{_where(path, text, section)}: unknown section [{section}]{hint}")
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{_where(path, text, section)}: {section} must be a table ([{section}])"
            )
        for key, value in table.items():
            dotted = f"{section}.{key}"
            spec = KEYS.get(dotted)
            if spec is None:
                hint = _did_you_mean(dotted, list(KEYS))
                warnings.append(f"{_where(path, text, section, key)}: unknown key {dotted}{hint}")
                continue
            try:
                sections[section][key] = _coerce(spec, value)
            except _Invalid:
                raise ConfigError(
                    f"{_where(path, text, section, key)}: {_problem(spec, value)}"
                ) from None
    for spec in KEYS.values():
        raw = env.get(spec.env)
        if raw is None:
            continue
        value = _parse_scalar(raw, spec)
        try:
            sections[spec.section][spec.name] = _coerce(spec, value)
        except _Invalid:
            raise ConfigError(f"{spec.env}: {_problem(spec, value)}") from None
    for name in env:
        if name.startswith(ENV_PREFIX) and "__" in name:
            known = {spec.env for spec in KEYS.values()}
            if name not in known:
                hint = _did_you_mean(name, sorted(known))
                warnings.append(f"environment: unknown override {name}{hint}")
    built = {name: SECTIONS[name](**values) for name, values in sections.items()}
    return Config(**built, path=path, warnings=tuple(warnings))


def _did_you_mean(word: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _parse_scalar(raw: str, spec: KeySpec) -> Any:
    """A command-line or environment value: TOML syntax when it parses, else a plain string."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    else:
        if spec.kind in ("str", "url") and not isinstance(value, str):
            return raw
        return value
    if spec.kind == "list[str]":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load clambake.toml (a missing file means all defaults) and apply CLAMBAKE_* overrides."""
    environ = os.environ if env is None else env
    if path is None or not path.exists():
        return _build({}, path=path, text="", env=environ)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_error(path, exc)) from None
    return _build(data, path=path, text=text, env=environ)


def _syntax_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    reason = reason[:1].lower() + reason[1:]
    if found:
        return f"{path.name}:{found.group(1)}: invalid TOML: {reason} (column {found.group(2)})"
    return f"{path.name}: invalid TOML: {reason}"


# ---------------------------------------------------------------- get / set


def _spec(key: str) -> KeySpec:
    spec = KEYS.get(key)
    if spec is None:
        hint = _did_you_mean(key, list(KEYS))
        raise ConfigError(f"unknown key {key}{hint}; `clambake config show` lists them")
    return spec


def get_value(config: Config, key: str) -> Any:
    spec = _spec(key)
    return getattr(getattr(config, spec.section), spec.name)


def _read_document(path: Path) -> tuple[str, tomlkit.TOMLDocument]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return text, tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(
            f"{path.name}:{exc.line}: invalid TOML: {exc}; fix it before `config set`"
        ) from None


def _write_checked(path: Path, before: str, document: tomlkit.TOMLDocument) -> str:
    after = tomlkit.dumps(document)
    try:
        data = tomllib.loads(after)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - tomlkit wrote bad TOML
        raise ConfigError(f"refused: the change would break {path.name}: {exc}") from None
    # Validate the whole file as it would be, environment overrides aside.
    _build(data, path=path, text=after, env={})
    if after != before:
        atomic_write_text(path, after)
    return after


def set_value(path: Path, key: str, raw: str) -> Any:
    """Set `key` to the TOML value `raw` in the file at `path`, keeping everything else byte for byte.

    Refuses (ConfigError, file untouched) when the result would not load.
    """
    spec = _spec(key)
    value = _parse_scalar(raw, spec)
    try:
        coerced = _coerce(spec, value)
    except _Invalid:
        raise ConfigError(f"refused: {_problem(spec, value)}; {path.name} is unchanged") from None
    before, document = _read_document(path)
    table = document.get(spec.section)
    if table is None:
        table = tomlkit.table()
        document.add(spec.section, table)
    elif not isinstance(table, tomlkit.items.Table | tomlkit.items.InlineTable):
        raise ConfigError(
            f"refused: {spec.section} in {path.name} is not a table; {path.name} is unchanged"
        )
    old = table.get(spec.name)
    new_item = tomlkit.item(coerced)
    if isinstance(old, tomlkit.items.Item) and not isinstance(new_item, tomlkit.items.Table):
        # Keep the user's spacing and trailing comment around the value.
        new_item.trivia.indent = old.trivia.indent
        new_item.trivia.comment_ws = old.trivia.comment_ws
        new_item.trivia.comment = old.trivia.comment
        new_item.trivia.trail = old.trivia.trail
    table[spec.name] = new_item
    _write_checked(path, before, document)
    return coerced


def unset_value(path: Path, key: str) -> None:
    """Remove `key` from the file so its default applies again."""
    spec = _spec(key)
    if not path.exists():
        return
    before, document = _read_document(path)
    table = document.get(spec.section)
    if table is None or spec.name not in table:
        return
    del table[spec.name]
    _write_checked(path, before, document)


# ---------------------------------------------------------------- repository identity

_REMOTE = re.compile(
    r"""^(?:
        (?:https?|ssh|git)://(?:[^@/]+@)?[^/:]+(?::\d+)?/   # https://host/ or ssh://git@host:22/
      | [^@/\s]+@[^:/\s]+:                                  # git@host:
      | file://.*/ | /.*/                                   # local bare repositories
    )(?P<path>.+?)(?:\.git)?/?$""",
    re.VERBOSE,
)


def parse_remote_url(url: str) -> tuple[str, str] | None:
    """('owner', 'repo') from a git remote URL, or None when it does not name one."""
    match = _REMOTE.match(url.strip())
    if not match:
        return None
    parts = [p for p in match.group("path").split("/") if p]
    if len(parts) < 2:
        return None
    return parts[-2], parts[-1].removesuffix(".git")


def infer_owner_repo(config: Config, root: Path) -> tuple[str, str]:
    """[github] owner/repo, else read from the `origin` remote of the repository at `root`."""
    owner, repo = config.github.owner, config.github.repo
    if owner and repo:
        return owner, repo
    try:
        url = subprocess.run(
            ["git", "-C", str(root), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        url = ""
    parsed = parse_remote_url(url) if url else None
    if parsed is None:
        raise ConfigError(
            "cannot tell the GitHub repository: set [github] owner and repo in clambake.toml "
            "(or add an `origin` remote)"
        )
    return owner or parsed[0], repo or parsed[1]
