"""`clambake config show | get KEY | set KEY VALUE | unset KEY | path`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

import tomlkit

from clambake_tui.config import KEYS, get_value, set_value, unset_value

if TYPE_CHECKING:
    from clambake_tui.cli import Context


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "config",
        help="show or change clambake.toml",
        description="Show or change clambake.toml. `set` keeps the file's comments and layout; "
        "a value that would make the file invalid is refused and the file is left as it was. "
        "Rollback levers: `config set agents.enabled false`, "
        "`config set github_actions.enabled false`.",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="every key with its effective value")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_show)
    get = actions.add_parser("get", help="print one key's effective value")
    get.add_argument("key", metavar="KEY", help="section.key, e.g. agents.max_concurrent")
    get.set_defaults(run=_get)
    put = actions.add_parser("set", help="set one key in clambake.toml")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE", help='a TOML value: 3, false, "text", ["a", "b"]')
    put.set_defaults(run=_set)
    unset = actions.add_parser("unset", help="remove a key so its default applies")
    unset.add_argument("key", metavar="KEY")
    unset.set_defaults(run=_unset)
    path = actions.add_parser("path", help="print the path of clambake.toml in use")
    path.set_defaults(run=_path)


def _toml(value: Any) -> str:
    if value is None:
        return "(unset)"
    return str(tomlkit.item(value).as_string())


def _show(ctx: Context) -> int:
    config = ctx.config()
    if ctx.args.json:
        print(json.dumps(config.as_dict(), indent=2))
        return 0
    section = ""
    for spec in KEYS.values():
        if spec.section != section:
            section = spec.section
            print(f"\n[{section}]" if section != "agents" else f"[{section}]")
        print(f"{spec.name} = {_toml(get_value(config, spec.dotted))}")
    return 0


def _get(ctx: Context) -> int:
    value = get_value(ctx.config(), ctx.args.key)
    print(_toml(value) if not isinstance(value, str) else value)
    return 0


def _set(ctx: Context) -> int:
    path = ctx.config_path
    value = set_value(path, ctx.args.key, ctx.args.value)
    print(f"{ctx.args.key} = {_toml(value)}  ({path})")
    return 0


def _unset(ctx: Context) -> int:
    path = ctx.config_path
    unset_value(path, ctx.args.key)
    print(f"{ctx.args.key} unset: the default applies  ({path})")
    return 0


def _path(ctx: Context) -> int:
    path = ctx.config_path
    suffix = "" if path.exists() else "  (does not exist: every key has its default)"
    print(f"{path}{suffix}")
    return 0
