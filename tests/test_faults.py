"""Faults across the whole system: agents, the supervisor, GitHub, Actions, bundling and disk.

Each case breaks something real (a process killed, GitHub answering 5xx/429 over real HTTP, a
full or read-only file system, a damaged registry) and then checks the four promises: no zombie,
no lost agent record, no duplicate pull request, no lost commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from clambake_tui.agents.registry import Registry
from clambake_tui.bundling.bundler import Bundler
from clambake_tui.bundling.landing import LandingStatus, land_agent
from clambake_tui.config import Config, load_config
from clambake_tui.errors import ClambakeError, StateError
from clambake_tui.metrics import read_events
from clambake_tui.model import AgentState, Issue
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.emulator.faults import Fault
from clambake_tui.sandbox.setup import SandboxLayout
from clambake_tui.state import Paths
from tests.fixtures.agents import (
    assert_gone,
    assert_no_zombies,
    fast_limits,
    make_manager,
    standin_issue,
    tree_pids,
)
from tests.fixtures.common import git
from tests.fixtures.github import sandbox_client

# ---------------------------------------------------------------- helpers


def sandbox_config(layout: SandboxLayout, **env: str) -> Config:
    """The sandbox's clambake.toml; by default trains leave locally at once (1-minute schedule,
    so every moment is inside the departure window)."""
    overrides = {
        "CLAMBAKE_GITHUB_ACTIONS__ENABLED": "false",
        "CLAMBAKE_BUNDLING__SCHEDULE_MINUTES": "1",
        **env,
    }
    return load_config(layout.config_path, env=overrides)


def emulator_of(layout: SandboxLayout) -> Emulator:
    assert layout.emulator is not None
    return layout.emulator


def task(number: int, mode: str = "succeed", delay: str = "0.01") -> Issue:
    """A sandbox issue whose agent (the stand-in) behaves as `mode`."""
    return Issue(
        number=number,
        title=f"Task {number}",
        body=f"standin-mode: {mode}\nstandin-delay: {delay}\nstandin-file: notes/task-{number}.md",
    )


async def until(check: object, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `check()` with a deadline (for work other processes do)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.05)


def count_events(paths: Paths, event: str) -> int:
    return sum(e["event"] == event for e in read_events(paths.metrics))


def pulls_covering(layout: SandboxLayout, number: int) -> list[dict[str, object]]:
    """Open pull requests whose body closes issue `number`."""
    return [
        p
        for p in emulator_of(layout).pulls()
        if p.get("state") == "open" and f"Fixes #{number}" in str(p.get("body") or "")
    ]


def origin_has(layout: SandboxLayout, sha: str, ref: str) -> bool:
    """`sha` is reachable from `ref` in the origin repository (the commit is not lost)."""
    done = subprocess.run(
        ["git", "merge-base", "--is-ancestor", sha, ref],
        cwd=layout.origin,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def branch_sha(layout: SandboxLayout, branch: str) -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=layout.origin,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def assert_every_record_final(paths: Paths, process_ids: list[str]) -> None:
    records = Registry(paths).load()
    missing = [pid for pid in process_ids if pid not in records]
    assert not missing, f"lost agent records: {missing}"
    active = [pid for pid in process_ids if records[pid].is_active]
    assert not active, f"records still active: {active}"


def assert_landed_once(layout: SandboxLayout, paths: Paths, number: int) -> str:
    """The agent's branch is on origin, in exactly one open bundle PR, its commit in it."""
    records = [r for r in Registry(paths).load().values() if r.process.issue_number == number]
    assert records, f"no record for #{number}"
    branch = records[-1].process.branch_name
    sha = branch_sha(layout, branch)
    assert sha, f"{branch} never reached origin"
    prs = pulls_covering(layout, number)
    assert len(prs) == 1, f"#{number} is in {len(prs)} open pull requests"
    head = str(prs[0]["pull"]["head_ref"])  # type: ignore[index]
    assert origin_has(layout, sha, f"refs/heads/{head}"), f"{sha} is not in {head}"
    assert "route:review" in emulator_of(layout).issue_labels(number)
    return sha


# ---------------------------------------------------------------- agents misbehave during a train


async def test_agents_crashing_hanging_and_ignoring_sigterm_while_a_train_leaves(
    sandbox: SandboxLayout,
) -> None:
    """One agent succeeds and its landing sends a local train; around it, one crashes, one hangs
    and one ignores SIGTERM and must be killed. A second bundler races the train."""
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox)
    limits = fast_limits(terminate_grace_s=0.5, max_restarts=1)
    async with make_manager(paths, config, limits=limits) as mgr:
        good = await mgr.spawn_agent("agent001", task(1))
        crash = await mgr.spawn_agent("agent002", task(2, "crash"))
        hang = await mgr.spawn_agent("agent003", task(3, "hang"))
        stubborn = await mgr.spawn_agent("agent004", task(4, "ignore-sigterm", delay="0.2"))
        ids = [p.process_id for p in (good, crash, hang, stubborn)]
        trees: set[int] = set()
        for process in (hang, stubborn):
            trees |= tree_pids(mgr.record(process.process_id)) | {process.pid or 0}
        await mgr.wait_finished(good.process_id, timeout=60)
        await until(lambda: count_events(paths, "bundle.run") >= 1, what="the train")
        # A second bundler, as a scheduled run would, while the others are still running.
        async with sandbox_client(sandbox, paths.metrics) as client:
            await Bundler(client, sandbox.work, config, lock_dir=paths.locks).run(force=True)
        await mgr.terminate_agent(hang.process_id)
        await mgr.terminate_agent(stubborn.process_id)
        final_crash = await mgr.wait_finished(crash.process_id, timeout=60)
    assert final_crash.status.state is AgentState.FAILED and final_crash.restarts == 1
    states = {p: Registry(paths).get(p).process.status.state for p in ids}  # type: ignore[union-attr]
    assert states[good.process_id] is AgentState.COMPLETED
    assert states[hang.process_id] is AgentState.TERMINATED
    assert states[stubborn.process_id] is AgentState.TERMINATED
    assert_every_record_final(paths, ids)
    assert_gone(trees)
    assert_no_zombies()
    assert_landed_once(sandbox, paths, 1)
    for number in (2, 3, 4):
        assert not pulls_covering(sandbox, number)


# ---------------------------------------------------------------- the supervisor is SIGKILLed

SPAWNER = """
import asyncio, json, sys
from pathlib import Path
from clambake_tui.agents.issue_source import LocalIssueSource
from clambake_tui.agents.supervisor import AgentProcessManager
from clambake_tui.config import load_config
from clambake_tui.model import Issue
from clambake_tui.state import Paths

async def main():
    root, config_path, env, issues = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
    manager = AgentProcessManager(
        Paths(Path(root)), load_config(Path(config_path), env=env),
        issues=LocalIssueSource(), poll_s=0.05, tail_s=0.05,
    )
    await manager.start()
    for n, spec in enumerate(issues, start=1):
        number, body = spec.split(":", 1)
        issue = Issue(number=int(number), title=f"Task {number}", body=body.replace("|", "\\n"))
        process = await manager.spawn_agent(f"agent{n:03d}", issue)
        print(process.process_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
def spawner_processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
async def test_the_supervisor_sigkilled_mid_run_and_restarted_loses_nothing(
    sandbox: SandboxLayout, spawner_processes: list[subprocess.Popen[str]]
) -> None:
    """The process that spawned two agents is SIGKILLed; their watchers carry on, a new manager
    adopts the runs, and both agents finish, land and go into one train."""
    paths = Paths(sandbox.work)
    env = {"CLAMBAKE_GITHUB_ACTIONS__ENABLED": "false", "CLAMBAKE_BUNDLING__SCHEDULE_MINUTES": "1"}
    slow = "standin-mode: succeed|standin-delay: 0.25"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SPAWNER,
            str(paths.root),
            str(sandbox.config_path),
            json.dumps(env),
            f"1:{slow}|standin-file: notes/one.md",
            f"2:{slow}|standin-file: notes/two.md",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    spawner_processes.append(proc)
    assert proc.stdout is not None
    ids = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
    assert all(ids), "the spawner did not report its agents"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    # Both runs are on record (typically still running, their spawner gone).
    assert set(ids) <= set(Registry(paths).load())
    async with make_manager(paths, sandbox_config(sandbox)) as mgr:
        finals = [await mgr.wait_finished(pid, timeout=90) for pid in ids]
    assert [f.status.state for f in finals] == [AgentState.COMPLETED] * 2
    await until(lambda: count_events(paths, "landing.pushed") >= 2, what="both landings")
    await until(lambda: all(pulls_covering(sandbox, n) for n in (1, 2)), what="the bundle PRs")
    assert_every_record_final(paths, ids)
    assert_no_zombies()
    for number in (1, 2):
        assert_landed_once(sandbox, paths, number)


@pytest.mark.slow
async def test_a_watcher_sigkilled_mid_run_is_replaced_and_the_run_still_lands(
    sandbox: SandboxLayout,
) -> None:
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox)
    async with make_manager(paths, config) as mgr:
        process = await mgr.spawn_agent("agent001", task(1, delay="0.15"))
        watcher = mgr.record(process.process_id).watcher_pid
        assert watcher
        os.kill(watcher, signal.SIGKILL)
    # A new manager (a restarted dashboard) finds the agent without its watcher and adopts it.
    async with make_manager(paths, config) as mgr:
        final = await mgr.wait_finished(process.process_id, timeout=90)
    assert final.status.state is AgentState.COMPLETED
    assert_every_record_final(paths, [process.process_id])
    assert_no_zombies()
    await until(lambda: pulls_covering(sandbox, 1), what="the bundle PR")
    assert_landed_once(sandbox, paths, 1)


class Terminal:
    """A real pseudo-terminal running a command, as a person's terminal runs the dashboard.

    A reader thread drains it all the time, as a terminal does: a program whose terminal stops
    reading blocks on its next write."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**env, "TERM": "xterm-256color", "COLORTERM": "truecolor"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:  # the program and its terminal are gone
                return
            if not chunk:
                return
            self.screen += chunk

    async def wait_for(self, text: bytes, timeout: float = 60.0) -> None:
        """Until `text` is painted after everything painted so far."""
        start = len(self.screen)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.screen[start:]:
            assert loop.time() < deadline, f"{text!r} never appeared on the terminal"
            await asyncio.sleep(0.05)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)
        self._reader.join(timeout=10)


@pytest.mark.slow
async def test_the_dashboard_sigkilled_while_its_agents_run_loses_nothing(
    sandbox: SandboxLayout,
) -> None:
    """Two agents spawned from the real dashboard in a terminal; the dashboard is SIGKILLed.
    The agents outlive it, a restarted supervisor adopts them, and both land, once."""
    paths = Paths(sandbox.work)
    env = {
        **os.environ,
        **sandbox.env,
        "CLAMBAKE_GITHUB_ACTIONS__ENABLED": "false",
        "CLAMBAKE_BUNDLING__SCHEDULE_MINUTES": "1",
        "CLAMBAKE_STANDIN_DELAY": "0.3",  # still working when the dashboard dies
    }
    exe = Path(sys.executable).with_name("clambake-tui")
    term = Terminal([str(exe)], sandbox.work, env)
    try:
        await term.wait_for(b"No agents yet")
        for count in (1, 2):
            term.type(b"s")
            # The form has loaded the route:ready queue (#1 is on it both times).
            await term.wait_for(b"[high]")
            term.type(b"\r")
            # Started (so its issue is claimed and off the queue the next form shows).
            await until(
                lambda count=count: (
                    sum(bool(r.process.pid) for r in Registry(paths).load().values()) == count
                ),
                what=f"agent {count} started",
            )
        records = Registry(paths).load()
        assert {r.spawner_pid for r in records.values()} == {term.proc.pid}
        term.proc.send_signal(signal.SIGKILL)
        term.proc.wait(timeout=30)
    finally:
        term.close()

    ids = list(records)
    alive = [r.process.pid for r in Registry(paths).load().values() if r.process.pid]
    assert alive and all(psutil.pid_exists(pid) for pid in alive), "agents died with the dashboard"
    async with make_manager(paths, sandbox_config(sandbox)) as mgr:
        finals = [await mgr.wait_finished(pid, timeout=90) for pid in ids]
    assert [f.status.state for f in finals] == [AgentState.COMPLETED] * 2
    await until(lambda: count_events(paths, "landing.pushed") >= 2, what="both landings")
    numbers = [f.issue_number for f in finals]
    await until(lambda: all(pulls_covering(sandbox, n) for n in numbers), what="the bundle PRs")
    assert_every_record_final(paths, ids)
    assert_no_zombies()
    for number in numbers:
        assert_landed_once(sandbox, paths, number)


@pytest.mark.slow
async def test_a_bundler_killed_mid_pull_request_leaves_no_duplicate_when_run_again(
    sandbox: SandboxLayout,
) -> None:
    """Two agents land with no train able to leave (Actions off, no local fallback), so both
    wait in the queue. `clambake bundle` is SIGKILLed while GitHub is slow to answer the request
    opening the bundle PR, which GitHub then completes anyway (the ambiguous case). The next run
    finds that PR instead of opening a second one, and it holds both branches."""
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox, CLAMBAKE_BUNDLING__FALLBACK_LOCAL="false")
    emu = emulator_of(sandbox)
    async with make_manager(paths, config) as mgr:
        for agent, number in (("agent001", 1), ("agent002", 2)):
            process = await mgr.spawn_agent(agent, task(number))
            await mgr.wait_finished(process.process_id, timeout=60)
    await until(lambda: count_events(paths, "landing.pushed") >= 2, what="both landings")
    await until(
        lambda: all("route:review" in emu.issue_labels(n) for n in (1, 2)), what="both queued"
    )
    assert not emu.pulls(), "no train could leave"

    slow = emu.add_fault(Fault.slow(2.0, times=1, method="POST", path=r"/pulls$"))
    env = {**os.environ, "CLAMBAKE_ROOT": str(paths.root)}
    bundle = subprocess.Popen(
        [sys.executable, "-m", "clambake_tui", "bundle", "--local", "--force"],
        cwd=paths.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await until(lambda: slow.seen >= 1, what="the bundle PR request")
    finally:
        bundle.send_signal(signal.SIGKILL)
        bundle.wait(timeout=30)
    # GitHub finishes what it was asked before the client died.
    await until(
        lambda: any(r.method == "POST" and r.path.endswith("/pulls") for r in emu.requests),
        what="GitHub to finish the held request",
    )
    assert len([p for p in emu.pulls() if p.get("state") == "open"]) == 1

    done = subprocess.run(
        [sys.executable, "-m", "clambake_tui", "bundle", "--local", "--force"],
        cwd=paths.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for number in (1, 2):
        assert_landed_once(sandbox, paths, number)
    bundles = [p for p in emu.pulls() if p.get("state") == "open"]
    assert len(bundles) == 1, [p.get("title") for p in bundles]
    assert_no_zombies()


# ---------------------------------------------------------------- GitHub fails during landing


@pytest.mark.slow
async def test_github_5xx_and_429_during_landing_are_retried_and_land_exactly_once(
    sandbox: SandboxLayout,
) -> None:
    emu = emulator_of(sandbox)
    paths = Paths(sandbox.work)
    emu.add_fault(Fault.burst(502, times=2, method="POST", path=r"/labels$"))
    emu.add_fault(Fault.burst(503, times=1, method="GET", path=r"/issues/1$"))
    emu.add_fault(Fault.too_many_requests(retry_after=1, times=1, method="POST", path="/comments"))
    async with make_manager(paths, sandbox_config(sandbox)) as mgr:
        process = await mgr.spawn_agent("agent001", task(1))
        final = await mgr.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED
    await until(lambda: pulls_covering(sandbox, 1), what="the bundle PR")
    assert all(f.hits >= 1 for f in emu.faults), "every fault was hit"
    assert_landed_once(sandbox, paths, 1)
    async with sandbox_client(sandbox, paths.metrics) as client:
        comments = await client.list_comments(1)
    assert sum("clambake:landed" in str(c.get("body")) for c in comments) == 1
    assert_no_zombies()


async def test_a_landing_github_refused_throughout_is_finished_later_without_duplicates(
    sandbox: SandboxLayout,
) -> None:
    """GitHub is down for the whole landing: the run stays completed, nothing is half-done
    twice; once GitHub is back, landing again routes it, comments once and bundles once."""
    emu = emulator_of(sandbox)
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox)
    down = emu.add_fault(Fault.burst(503, times=None, method="POST", path="/comments"))
    async with make_manager(paths, config) as mgr:
        process = await mgr.spawn_agent("agent001", task(1))
        final = await mgr.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED
    await until(lambda: down.hits >= 1, what="the refused comment")
    emu.remove_fault(down)
    async with sandbox_client(sandbox, paths.metrics) as client:
        outcome = await land_agent(final, paths, config, client)
        again = await land_agent(final, paths, config, client)
        comments = await client.list_comments(1)
    assert outcome.status is LandingStatus.LANDED
    assert again.status is LandingStatus.ALREADY_LANDED
    assert sum("clambake:landed" in str(c.get("body")) for c in comments) == 1
    assert_landed_once(sandbox, paths, 1)
    assert_every_record_final(paths, [process.process_id])
    assert_no_zombies()


# ---------------------------------------------------------------- Actions is down


@pytest.mark.slow
async def test_actions_down_during_a_train_bundles_locally_once(sandbox: SandboxLayout) -> None:
    """Actions refuses every dispatch: the landing's train leaves locally. When Actions is back,
    a forced run of the workflow (the real workflow steps on the emulator's runner) finds the
    issue already bundled and opens nothing more."""
    emu = emulator_of(sandbox)
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox, CLAMBAKE_GITHUB_ACTIONS__ENABLED="true")
    dispatches = emu.add_fault(Fault.burst(503, times=None, method="POST", path="/dispatches"))
    async with make_manager(paths, config) as mgr:
        process = await mgr.spawn_agent("agent001", task(1))
        final = await mgr.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED
    await until(lambda: count_events(paths, "bundle.run") >= 1, what="the local train")
    runs = [e for e in read_events(paths.metrics) if e["event"] == "bundle.run"]
    assert [r["path"] for r in runs] == ["local"]
    assert dispatches.hits >= 1
    assert emu.runs() == []  # Actions never ran a train that could double the local one
    assert_landed_once(sandbox, paths, 1)

    emu.remove_fault(dispatches)
    run_id = emu.dispatch("clambake-bundling.yml", inputs={"force_bundle": "true"})
    run = await asyncio.to_thread(emu.wait_for_run, run_id, timeout=120)
    assert run["conclusion"] == "success", emu.jobs(run_id)
    steps = {step["name"]: step["conclusion"] for step in emu.jobs(run_id)[0]["steps"]}
    assert steps.get("Bundle") == "success", steps  # the bundle step really ran
    assert_landed_once(sandbox, paths, 1)
    assert len([p for p in emu.pulls() if p.get("state") == "open"]) == 1
    assert_no_zombies()


# ---------------------------------------------------------------- the state folder cannot be written


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_state_folder(agent_paths: Paths) -> Iterator[Paths]:
    """`.clambake/` on its own small tmpfs (needs root; skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    saved = agent_paths.state.with_name(".clambake-before")
    agent_paths.state.rename(saved)
    if not _mount_tmpfs(agent_paths.state, "4m"):
        saved.rename(agent_paths.state)
        pytest.skip("cannot mount a tmpfs here")
    try:
        agent_paths.ensure_state()
        yield agent_paths
    finally:
        subprocess.run(["umount", "-l", str(agent_paths.state)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


async def test_a_full_disk_refuses_the_spawn_clearly_and_keeps_the_registry(
    small_state_folder: Paths, tiny_agent: Path
) -> None:
    from tests.fixtures.agents import agents_config

    paths = small_state_folder
    async with make_manager(paths, agents_config(tiny_agent)) as mgr:
        first = await mgr.spawn_agent("agent001", standin_issue(1))
        before = paths.registry.read_bytes()
        filler = _fill(paths.state)
        with pytest.raises(ClambakeError) as caught:
            await mgr.spawn_agent("agent002", standin_issue(2))
        assert "disk full" in str(caught.value) or "No space left" in str(caught.value)
        assert "\n" not in str(caught.value)
        assert paths.registry.read_bytes() == before  # the old registry, whole
        json.loads(before)
        filler.unlink()
        await mgr.terminate_agent(first.process_id)
        second = await mgr.spawn_agent("agent002", standin_issue(2))
        await mgr.terminate_agent(second.process_id)
    assert_every_record_final(paths, [first.process_id, second.process_id])
    assert_no_zombies()


@pytest.mark.slow
async def test_a_disk_that_fills_while_an_agent_runs_still_records_its_termination(
    small_state_folder: Paths, tiny_agent: Path
) -> None:
    from tests.fixtures.agents import agents_config

    paths = small_state_folder
    async with make_manager(paths, agents_config(tiny_agent)) as mgr:
        process = await mgr.spawn_agent("agent001", standin_issue(1))
        await until(
            lambda: (
                Registry(paths).load()[process.process_id].process.status.state
                is AgentState.WORKING
            ),
            what="the agent to work",
        )
        filler = _fill(paths.state)
        stopping = asyncio.create_task(mgr.terminate_agent(process.process_id))
        try:
            # The tree ends at once, whatever the disk says.
            await until(lambda: not psutil.pid_exists(process.pid or 0), timeout=10)
        finally:
            filler.unlink()
        try:
            await asyncio.wait_for(stopping, 15)
        except (TimeoutError, ClambakeError):
            await mgr.reconcile()
        final = await mgr.wait_finished(process.process_id, timeout=30)
        assert final.status.state is AgentState.TERMINATED, final.status
        assert mgr.record(process.process_id).failure_mode == "killed"
    assert_no_zombies()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for everyone (a read-only bind mount of itself), then writable again."""
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, check=False
        )
        if ro.returncode != 0:
            holders = subprocess.run(["lsof", "+D", str(folder)], capture_output=True, text=True)
            pytest.fail(f"{ro.stderr.decode().strip()}; open there:\n{holders.stdout}")
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_read_only_state_folder_is_a_clear_error_and_the_registry_survives(
    agent_paths: Paths, tiny_agent: Path
) -> None:
    from tests.fixtures.agents import agents_config

    if os.geteuid() != 0:
        pytest.skip("making a folder read-only for root needs a read-only mount")
    paths = agent_paths
    async with make_manager(paths, agents_config(tiny_agent)) as mgr:
        first = await mgr.spawn_agent("agent001", standin_issue(1))
        await mgr.terminate_agent(first.process_id)
        watcher = mgr.record(first.process_id).watcher_pid
        # Its watcher still finishes up (hook, logs) after the status is final; let it go.
        await until(lambda: not psutil.pid_exists(watcher or 0), what="the watcher to exit")
        before = paths.registry.read_bytes()
        with read_only(paths.state):
            with pytest.raises(StateError) as caught:
                await mgr.spawn_agent("agent002", standin_issue(2))
            message = str(caught.value)
            assert "Read-only file system" in message and "\n" not in message
            records = Registry(paths).load()
            assert records[first.process_id].process.status.state is AgentState.TERMINATED
            assert paths.registry.read_bytes() == before
        second = await mgr.spawn_agent("agent002", standin_issue(2))
        await mgr.terminate_agent(second.process_id)
    assert_every_record_final(paths, [first.process_id, second.process_id])
    assert_no_zombies()


# ---------------------------------------------------------------- a damaged registry


async def test_a_corrupted_registry_is_backed_up_and_rebuilt_with_every_record(
    agent_paths: Paths,
) -> None:
    async with make_manager(agent_paths) as mgr:
        done = []
        for agent, number in (("agent001", 1), ("agent002", 2)):
            process = await mgr.spawn_agent(agent, standin_issue(number))
            done.append(await mgr.wait_finished(process.process_id, timeout=60))
    garbage = b'{"version": 1, "agents": {"agent001-1-\x00\xff'
    agent_paths.registry.write_bytes(garbage)

    async with make_manager(agent_paths) as mgr:
        rebuilt = {p.process_id: p for p in mgr.list_agents()}
        assert any("damaged" in w for w in mgr.warnings), mgr.warnings
    assert set(rebuilt) == {p.process_id for p in done}
    for process in done:
        assert rebuilt[process.process_id].status.state is AgentState.COMPLETED
    backups = list(agent_paths.state.glob("registry.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == garbage
    json.loads(agent_paths.registry.read_text())
    assert_no_zombies()


async def test_a_registry_damaged_while_an_agent_runs_keeps_the_run(
    agent_paths: Paths,
) -> None:
    async with make_manager(agent_paths) as mgr:
        process = await mgr.spawn_agent("agent001", standin_issue(1, delay="0.1"))
        agent_paths.registry.write_text("not json at all")
        final = await mgr.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED
    assert_every_record_final(agent_paths, [process.process_id])
    assert git(agent_paths.root, "log", "-1", "--format=%s", final.branch_name)
    assert_no_zombies()
