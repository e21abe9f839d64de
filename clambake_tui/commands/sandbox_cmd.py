"""`clambake sandbox`: the embedded GitHub emulator and a rehearsal repository."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clambake_tui.errors import ClambakeError

if TYPE_CHECKING:
    from clambake_tui.cli import Context

__all__ = ["register", "serve", "init"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "sandbox",
        help="a local GitHub emulator and a rehearsal repository (no account, no network)",
        description="Rehearse without GitHub: `init` lays out a sandbox repository with issues, "
        "`serve` runs the GitHub emulator it talks to.",
    )
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")

    serve_parser = actions.add_parser(
        "serve",
        help="serve the GitHub emulator on 127.0.0.1 until Ctrl-C",
        description="Serve GitHub's REST API for the sandbox repositories on 127.0.0.1.",
    )
    serve_parser.add_argument(
        "--port", type=int, help="port to listen on (default: the state file's, else any free one)"
    )
    serve_parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the emulator's state in this JSON file (created if missing)",
    )
    serve_parser.add_argument(
        "--repo", metavar="DIR", help="a bare git repository (or a sandbox folder) to serve"
    )
    serve_parser.add_argument(
        "--owner", default="clambake", help="owner of --repo (default: clambake)"
    )
    serve_parser.add_argument(
        "--name", default=None, help="name of --repo (default: the folder's name)"
    )
    serve_parser.add_argument(
        "--token", help="the token to accept (default: the state file's, else a new one)"
    )
    serve_parser.add_argument(
        "--rate-limit",
        type=int,
        default=5000,
        metavar="N",
        help="requests per hour per token (default: 5000)",
    )
    serve_parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='inject a fault, e.g. \'{"kind": "error", "status": 502, "times": 3}\' or '
        '\'{"kind": "actions_down"}\' (repeatable)',
    )
    serve_parser.add_argument("--faults", metavar="FILE", help="a JSON file with a list of faults")
    serve_parser.add_argument(
        "--queue-delay",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds a new workflow run stays queued (default: 2)",
    )
    serve_parser.add_argument(
        "--secondary-limits",
        action="store_true",
        help="apply GitHub's secondary rate limits (80 creations a minute, 500 an hour, "
        "100 requests in flight)",
    )
    serve_parser.add_argument(
        "--no-run-details",
        action="store_true",
        help="answer every dispatch 204, as an older GitHub Enterprise Server does",
    )
    serve_parser.add_argument(
        "--run-listed-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds before a dispatched run shows in run lists, as on GitHub (default: 1)",
    )
    serve_parser.add_argument(
        "--schedule-every",
        type=float,
        metavar="SECONDS",
        help="fire `schedule` runs of workflows with a cron trigger this often (default: never)",
    )
    serve_parser.set_defaults(run=serve)

    init_parser = actions.add_parser(
        "init",
        help="lay out a sandbox repository with issues in DIR",
        description="Lay out DIR/origin.git (the repository as GitHub holds it), DIR/work (your "
        "clone, with a clambake.toml pointing at the emulator and the stand-in agent) and the "
        "emulator's state with a few route:ready issues.",
    )
    init_parser.add_argument("dir", metavar="DIR", help="an empty or new folder")
    init_parser.add_argument(
        "--port", type=int, help="port the emulator will serve on (default: a free one now)"
    )
    init_parser.set_defaults(run=init)
    parser.set_defaults(run=lambda ctx: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load_faults(args: argparse.Namespace) -> list[Any]:
    from clambake_tui.sandbox.emulator import Fault

    raw: list[Any] = []
    for text in args.fault:
        try:
            raw.append(json.loads(text))
        except ValueError as exc:
            raise ClambakeError(f"--fault {text!r} is not JSON: {exc}") from None
    if args.faults:
        try:
            loaded = json.loads(Path(args.faults).read_text())
        except (OSError, ValueError) as exc:
            raise ClambakeError(f"cannot read faults from {args.faults}: {exc}") from None
        raw.extend(loaded if isinstance(loaded, list) else [loaded])
    faults = []
    for item in raw:
        if not isinstance(item, dict):
            raise ClambakeError(f"a fault must be a JSON object, got {item!r}")
        try:
            faults.append(Fault.from_json(item))
        except (ValueError, TypeError) as exc:
            raise ClambakeError(f"bad fault {json.dumps(item)}: {exc}") from None
    return faults


def _bare_repo(path: Path) -> Path:
    for candidate in (path, path / "origin.git", path / ".git"):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise ClambakeError(f"{path} is not a git repository (nor a sandbox folder with origin.git)")


def serve(ctx: Context) -> int:
    from clambake_tui.sandbox.emulator import Emulator

    args = ctx.args
    state = Path(args.state).resolve() if args.state else None
    saved: dict[str, Any] = {}
    if state is not None and state.is_file():
        try:
            saved = json.loads(state.read_text())
        except ValueError as exc:
            raise ClambakeError(f"{state} is not an emulator state file: {exc}") from None
    if state is None and not args.repo:
        raise ClambakeError("nothing to serve: give --repo DIR (a bare repository) or --state FILE")
    faults = _load_faults(args)
    port = args.port if args.port is not None else int(saved.get("port") or 0)
    try:
        emulator = Emulator(
            port=port,
            token=args.token,
            state_file=state,
            rate_limit=args.rate_limit,
            queue_delay=args.queue_delay,
            schedule_every=args.schedule_every,
            run_listed_after=args.run_listed_after,
            secondary_limits=args.secondary_limits,
            run_details=not args.no_run_details,
        )
    except OSError as exc:
        raise ClambakeError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} (choose another with --port)"
        ) from None
    if args.repo:
        bare = _bare_repo(Path(args.repo).resolve())
        name = args.name or (
            bare.parent.name
            if bare.name in ("origin.git", ".git")
            else bare.name.removesuffix(".git")
        )
        emulator.add_repo(args.owner, name, bare)
    if not emulator.store.repos:
        emulator.stop()
        raise ClambakeError(f"{state} holds no repository: add one with --repo DIR")
    for repo in emulator.store.repos.values():
        if not repo.git.exists():
            emulator.stop()
            raise ClambakeError(
                f"the git repository behind {repo.full_name} is gone ({repo.bare_path}): "
                "lay out a new sandbox with `clambake sandbox init DIR`"
            )
    for fault in faults:
        emulator.add_fault(fault)
    emulator.start()
    repos = ", ".join(r.full_name for r in emulator.store.repos.values())
    print(f"GitHub emulator serving {repos} at {emulator.url}")
    print(f"export GH_TOKEN={emulator.token}")
    print(f"export CLAMBAKE_GITHUB__API_URL={emulator.url}")
    if state is not None:
        print(f"state: {state}")
    print("Ctrl-C to stop.", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        emulator.stop()
        print("emulator stopped", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (a supervisor stopping us) ends the server like Ctrl-C does: state saved, runs ended.
    raise KeyboardInterrupt


def init(ctx: Context) -> int:
    from clambake_tui.sandbox.setup import build_sandbox

    folder = Path(ctx.args.dir).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ClambakeError(f"{folder} is not empty: choose a new or empty folder")
    try:
        layout = build_sandbox(folder, port=ctx.args.port)
    except OSError as exc:
        raise ClambakeError(f"cannot lay out a sandbox in {folder}: {exc}") from None
    print(f"Sandbox laid out in {layout.folder}:")
    print(
        f"  origin.git      the repository as the emulator serves it ({layout.owner}/{layout.repo})"
    )
    print(f"  work/           your clone; its clambake.toml points at {layout.url}")
    print(
        f"  {layout.state_file.name if layout.state_file else 'emulator.json'}   "
        f"the emulator's state: {len(layout.issue_numbers)} route:ready issues, labels, token"
    )
    print()
    print("Serve it (leave it running in another terminal):")
    print(f"  clambake sandbox serve --state {layout.state_file}")
    print("Then, here:")
    for line in layout.export_lines:
        print(f"  {line}")
    return 0
