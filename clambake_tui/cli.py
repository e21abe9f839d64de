"""The `clambake` and `clambake-tui` entry points: argument parsing and one-line errors.

Each subcommand lives in `clambake_tui/commands/<name>.py` and exposes `register(subparsers)`.
Nothing here imports Textual: `clambake` and `clambake-tui --once` run without it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clambake_tui import __version__
from clambake_tui.config import Config, load_config
from clambake_tui.errors import ClambakeError
from clambake_tui.logs import configure_logging, get_logger
from clambake_tui.redact import redact
from clambake_tui.state import Paths

__all__ = ["Context", "main", "tui_main", "COMMAND_MODULES"]

# Order is the order of `clambake --help`.
COMMAND_MODULES = ("agents", "land", "actions", "bundle", "config", "sandbox", "metrics")

log = get_logger(__name__)


@dataclass
class Context:
    """What every command gets: where the repository is, its configuration, the parsed args."""

    args: argparse.Namespace
    paths: Paths
    _config: Config | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        explicit = getattr(self.args, "config", None) or os.environ.get("CLAMBAKE_CONFIG")
        return Path(explicit).resolve() if explicit else self.paths.config

    def ensure_state(self) -> Path:
        """Create .clambake/ (and .gitignore it) and start writing the JSON log there."""
        state = self.paths.ensure_state()
        configure_logging(self.paths.logs, verbose=self.args.verbose)
        return state

    def config(self) -> Config:
        """Load clambake.toml once; its warnings go to stderr."""
        if self._config is None:
            self._config = load_config(self.config_path)
            for warning in self._config.warnings:
                print(f"clambake: warning: {warning}", file=sys.stderr)
        return self._config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log to stderr, readably")
    parser.add_argument(
        "--config", metavar="PATH", help="clambake.toml to use (default: the repository root's)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clambake",
        description="Run a squad of headless Claude Code agents against a GitHub repository.",
        epilog="The dashboard is `clambake-tui`; `clambake-tui --demo` tries everything offline.",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"clambake_tui.commands.{name}_cmd")
        module.register(sub)
    return parser


Runner = Callable[[Context], int]


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, prog: str) -> int:
    paths = Paths.discover()
    configure_logging(paths.logs if paths.state.is_dir() else None, verbose=args.verbose)
    ctx = Context(args=args, paths=paths)
    runner: Runner | None = getattr(args, "run", None)
    if runner is None:
        parser.print_help()
        return 2
    try:
        return runner(ctx)
    except ClambakeError as exc:
        log.warning("command failed: %s", exc, extra={"command": prog})
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        log.error("unexpected error", exc_info=True, extra={"command": prog})
        where = paths.logs / "clambake.jsonl"
        print(
            f"{prog}: internal error: {redact(str(exc)) or type(exc).__name__} "
            f"(details in {where})",
            file=sys.stderr,
        )
        return 70


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return _run(parser, args, "clambake")


def build_tui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clambake-tui",
        description="The clambake dashboard: live agent panes beside the bundling workflow's runs.",
    )
    _common(parser)
    parser.add_argument(
        "--once",
        action="store_true",
        help="refresh once without the terminal UI, print a snapshot and exit "
        "(0 healthy, 1 an agent or the last bundling run failed, 2 configuration or auth error)",
    )
    parser.add_argument("--json", action="store_true", help="with --once: print JSON")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against an embedded GitHub emulator and stand-in agents (no account, no network)",
    )
    return parser


def tui_main(argv: Sequence[str] | None = None) -> int:
    parser = build_tui_parser()
    args = parser.parse_args(argv)
    from clambake_tui.commands import dashboard_cmd

    args.run = dashboard_cmd.run
    return _run(parser, args, "clambake-tui")


if __name__ == "__main__":  # pragma: no cover
    logging.captureWarnings(True)
    raise SystemExit(main())
