"""The agent supervisor with real stand-in agents: spawning, limits, and every bad day."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace

import psutil
import pytest

from clambake_tui.agents.process_tree import is_alive
from clambake_tui.agents.registry import Registry
from clambake_tui.agents.supervisor import AgentEvent, AgentEventKind, AgentProcessManager
from clambake_tui.errors import AgentError
from clambake_tui.metrics import read_events
from clambake_tui.model import AgentState, Issue
from clambake_tui.state import Paths
from tests.fixtures.agents import (
    agents_config,
    assert_gone,
    assert_no_zombies,
    fast_limits,
    make_manager,
    standin_issue,
    tree_pids,
)
from tests.fixtures.common import git


async def test_ten_agents_five_at_a_time_each_commit_on_their_own_branch(
    manager: AgentProcessManager, agent_paths: Paths
) -> None:
    issues = [standin_issue(n) for n in range(1, 11)]
    most_active = 0
    pending = list(issues)
    running: dict[str, Issue] = {}
    finished = []
    while pending or running:
        while pending and len(running) < 5:
            issue = pending.pop(0)
            process = await manager.spawn_agent(f"agent{issue.number:03d}", issue)
            running[process.process_id] = issue
            most_active = max(most_active, len(manager.list_active_agents()))
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(manager.wait_finished(pid, timeout=120)) for pid in running],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            process = task.result()
            finished.append(process)
            running.pop(process.process_id)
        most_active = max(most_active, len(manager.list_active_agents()))
    assert most_active <= 5
    assert len(finished) == 10
    branches = set()
    for process in finished:
        assert process.status.state is AgentState.COMPLETED, process.status
        assert process.branch_name.startswith(f"agent{process.issue_number:03d}/")
        log = git(agent_paths.root, "log", "--format=%s", f"main..{process.branch_name}")
        assert f"issue #{process.issue_number}" in log
        branches.add(process.branch_name)
    assert len(branches) == 10
    assert_no_zombies()


async def test_a_spawn_over_max_concurrent_is_refused_with_a_clear_message(
    agent_paths: Paths, tiny_agent
) -> None:
    mgr = make_manager(agent_paths, agents_config(tiny_agent), limits=fast_limits(max_concurrent=2))
    async with mgr:
        await mgr.spawn_agent("agent001", Issue(1, "one"))
        await mgr.spawn_agent("agent002", Issue(2, "two"))
        with pytest.raises(AgentError, match=r"all 2 agent slots are taken .*refused, not queued"):
            await mgr.spawn_agent("agent003", Issue(3, "three"))
        assert len(mgr.list_active_agents()) == 2
        await mgr.terminate_all()
    assert_no_zombies()


async def test_two_processes_spawning_at_once_cannot_both_take_the_last_slot(
    agent_paths: Paths, tiny_agent
) -> None:
    async with make_manager(
        agent_paths, agents_config(tiny_agent), limits=fast_limits(max_concurrent=1)
    ) as mgr:
        script = (
            "import asyncio, sys\n"
            "from clambake_tui.agents.issue_source import LocalIssueSource\n"
            "from clambake_tui.model import Issue\n"
            "from tests.fixtures.agents import make_manager, agents_config, fast_limits\n"
            "from clambake_tui.state import Paths\n"
            "from pathlib import Path\n"
            "async def main():\n"
            "    m = make_manager(Paths(Path(sys.argv[1])), agents_config(sys.argv[2]),"
            " limits=fast_limits(max_concurrent=1))\n"
            "    try:\n"
            "        await m.spawn_agent(sys.argv[3], Issue(int(sys.argv[4]), 't'))\n"
            "        print('spawned')\n"
            "    except Exception as exc:\n"
            "        print('refused', exc)\n"
            "    await m.close()\n"
            "asyncio.run(main())\n"
        )
        import sys

        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                script,
                str(agent_paths.root),
                str(tiny_agent),
                f"agent00{n}",
                str(n),
                stdout=asyncio.subprocess.PIPE,
                cwd=str(__import__("pathlib").Path(__file__).parent.parent),
            )
            for n in (1, 2)
        ]
        outputs = [(await p.communicate())[0].decode() for p in procs]
        assert sorted(o.split()[0] for o in outputs) == ["refused", "spawned"], outputs
        assert len(mgr.list_active_agents()) == 1
        await mgr.terminate_all()


async def test_disabled_agents_refuse_to_spawn_and_say_why(agent_paths: Paths) -> None:
    mgr = make_manager(agent_paths, agents_config(enabled=False))
    with pytest.raises(AgentError, match=r"agents are disabled \(agents.enabled = false\)"):
        await mgr.spawn_agent("agent001", standin_issue(1))
    assert mgr.list_agents() == []
    await mgr.close()


async def test_agent_ids_outside_agent001_to_agent999_are_refused(manager) -> None:
    for bad in ("agent000", "agent1", "agent1000", "bob", "../agent001"):
        with pytest.raises(AgentError, match=r"use agent001 \.\.\. agent999"):
            await manager.spawn_agent(bad, standin_issue(1))


async def test_the_same_agent_or_issue_cannot_run_twice(agent_paths: Paths, tiny_agent) -> None:
    async with make_manager(agent_paths, agents_config(tiny_agent)) as mgr:
        await mgr.spawn_agent("agent001", Issue(1, "one"))
        with pytest.raises(AgentError, match="agent001 is already running on #1"):
            await mgr.spawn_agent("agent001", Issue(2, "two"))
        with pytest.raises(AgentError, match="issue #1 is already being worked by agent001"):
            await mgr.spawn_agent("agent002", Issue(1, "one"))
        await mgr.terminate_all()


async def test_a_missing_agent_binary_fails_the_spawn_with_the_reason(agent_paths: Paths) -> None:
    mgr = make_manager(agent_paths, agents_config("/nonexistent/claude"))
    with pytest.raises(AgentError, match="cannot start /nonexistent/claude: No such file"):
        await mgr.spawn_agent("agent001", standin_issue(1))
    [process] = mgr.list_agents()
    assert process.status.state is AgentState.FAILED
    assert "cannot start /nonexistent/claude" in (process.status.error or "")
    assert not mgr.list_active_agents()
    await mgr.close()


async def test_an_agent_gets_dev_null_as_stdin_its_own_session_and_log_files(
    agent_paths: Paths, tiny_agent
) -> None:
    async with make_manager(agent_paths, agents_config(tiny_agent)) as mgr:
        process = await mgr.spawn_agent("agent001", Issue(1, "one"))
        proc = psutil.Process(process.pid)
        assert proc.cwd() == str(process.worktree)
        stdin = __import__("os").readlink(f"/proc/{process.pid}/fd/0")
        assert stdin == "/dev/null"
        assert __import__("os").getsid(process.pid) == process.pid
        assert __import__("os").getsid(process.pid) != __import__("os").getsid(0)
        assert process.log_path.parent.parent == agent_paths.agents
        env = proc.environ()
        assert env["CLAMBAKE_AGENT_ID"] == "agent001"
        assert env["CLAMBAKE_ISSUE"] == "1"
        await mgr.terminate_all()


# ---------------------------------------------------------------- bad days


BAD_DAYS = [
    # mode, expected state, words of the error, failure mode, extra env
    ("fail", AgentState.FAILED, "stand-in failure", "error", {}),
    ("auth-error", AgentState.FAILED, "Not logged in", "auth_error", {}),
    ("crash", AgentState.FAILED, "exited with code 1 without a result", "crash", {}),
    ("hang", AgentState.FAILED, "timed out after 3 s", "timeout", {}),
    ("ignore-sigterm", AgentState.FAILED, "timed out after 3 s", "timeout", {}),
    ("fork-grandchild", AgentState.FAILED, "timed out after 3 s", "timeout", {}),
    ("linger", AgentState.COMPLETED, None, None, {}),
    (
        "flood",
        AgentState.COMPLETED,
        None,
        None,
        {"CLAMBAKE_STANDIN_FLOOD_RATE": "20000", "CLAMBAKE_STANDIN_FLOOD_SECONDS": "1"},
    ),
    ("garbage", AgentState.COMPLETED, None, None, {}),
]


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


@pytest.mark.parametrize(("mode", "state", "words", "failure_mode", "env"), BAD_DAYS)
async def test_each_bad_day_ends_in_the_right_status_with_the_tree_gone(
    agent_paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    state: AgentState,
    words: str | None,
    failure_mode: str | None,
    env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    limits = fast_limits(timeout_s=3.0, log_max_bytes=512 * 1024)
    async with make_manager(agent_paths, limits=limits) as mgr:
        process = await mgr.spawn_agent("agent001", standin_issue(5, mode))
        seen_pids: set[int] = {process.pid or 0}
        record = mgr.record(process.process_id)
        for _ in range(10):
            seen_pids |= tree_pids(record) | _descendants(process.pid or 0)
            await asyncio.sleep(0.05)
        final = await mgr.wait_finished(process.process_id, timeout=60)
        assert final.status.state is state, final.status
        if words:
            assert words in (final.status.error or ""), final.status.error
        assert mgr.record(process.process_id).failure_mode == failure_mode
        assert not tree_pids(mgr.record(process.process_id))
        assert_gone(seen_pids)
        if mode == "flood":
            # Rotated on disk: the live log and one older copy, each near the bound.
            rotated = final.log_path.with_name("stdout.log.1")
            assert rotated.exists()
            assert final.log_path.stat().st_size < 2 * limits.log_max_bytes
    assert_no_zombies()
    finished = [e for e in read_events(agent_paths.metrics) if e["event"] == "agent.finished"]
    assert finished[-1]["failure_mode"] == failure_mode


async def test_terminate_kills_grandchildren_that_left_the_group(
    manager: AgentProcessManager,
) -> None:
    process = await manager.spawn_agent("agent001", standin_issue(3, "fork-grandchild"))
    # The grandchild reports its pid in a tool result; wait until it is there.
    grandchild = None
    for _ in range(200):
        for line in process.log_path.read_text().splitlines():
            if '"pid"' in line and "backgroundTaskId" in line:
                grandchild = json.loads(line)["tool_use_result"]["pid"]
        if grandchild:
            break
        await asyncio.sleep(0.02)
    assert grandchild, "the stand-in never reported its grandchild"
    assert __import__("os").getsid(grandchild) != process.pid
    final = await manager.terminate_agent(process.process_id)
    assert final.status.state is AgentState.TERMINATED
    assert_gone([grandchild, process.pid or 0])
    assert_no_zombies()


async def test_terminate_escalates_to_sigkill_after_the_grace(
    manager: AgentProcessManager,
) -> None:
    process = await manager.spawn_agent("agent001", standin_issue(4, "ignore-sigterm"))
    await asyncio.sleep(0.3)
    final = await manager.terminate_agent(process.process_id)
    assert final.status.state is AgentState.TERMINATED
    assert manager.record(process.process_id).failure_mode == "killed"
    assert_gone([process.pid or 0])
    assert_no_zombies()


async def test_a_crashing_agent_is_restarted_with_resume_up_to_max_restarts(
    agent_paths: Paths,
) -> None:
    async with make_manager(agent_paths, limits=fast_limits(max_restarts=2)) as mgr:
        process = await mgr.spawn_agent("agent001", standin_issue(6, "crash"))
        final = await mgr.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.FAILED
    assert final.restarts == 2
    restarted = [e for e in read_events(agent_paths.metrics) if e["event"] == "agent.restarted"]
    assert [e["restarts"] for e in restarted] == [1, 2]
    assert_no_zombies()


async def test_subscribers_get_status_changes_and_log_lines(
    manager: AgentProcessManager,
) -> None:
    queue = manager.subscribe()
    process = await manager.spawn_agent("agent001", standin_issue(8))
    await manager.wait_finished(process.process_id, timeout=60)
    states, lines = [], []
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        try:
            event = await asyncio.wait_for(queue.get(), 0.5)
        except TimeoutError:
            break
        if event.kind is AgentEventKind.STATUS:
            states.append(event.process.status.state)
        else:
            lines.extend(event.lines)
        if states and states[-1] is AgentState.COMPLETED and any("done:" in x for x in lines):
            break
    assert states[-1] is AgentState.COMPLETED
    assert any(line.startswith("Write notes/issue-8.md") for line in lines), lines
    assert manager.tail(process.process_id, 1)[0].startswith("done: success")


async def test_a_terminate_request_written_without_its_signal_still_ends_the_run(
    manager: AgentProcessManager,
) -> None:
    """The request is written to the registry before SIGTERM is sent; a watcher that never gets
    the signal (lost, or blocked) still reads the request and ends the run."""
    process = await manager.spawn_agent("agent001", standin_issue(14, "hang"))
    # The watcher is past its start (it has read the agent's first line and said so).
    deadline = asyncio.get_running_loop().time() + 30
    while manager.record(process.process_id).process.status.state is not AgentState.WORKING:
        assert asyncio.get_running_loop().time() < deadline, "the agent never started working"
        await asyncio.sleep(0.02)
    manager.registry.update(process.process_id, lambda r: replace(r, stop_requested=True))
    final = await manager.wait_finished(process.process_id, timeout=30)
    assert final.status.state is AgentState.TERMINATED
    assert not is_alive(final.pid, final.pid_create_time)


def words_burst(prefix: str, count: int, *, message: Callable[[int], str], main_agent: bool) -> str:
    """`count` stream-json lines of assistant text, "<prefix> <i>"."""
    out = []
    for i in range(count):
        event: dict[str, object] = {
            "type": "assistant",
            "message": {"id": message(i), "content": [{"type": "text", "text": f"{prefix} {i}"}]},
        }
        if main_agent:
            event["parent_tool_use_id"] = None
        out.append(json.dumps(event) + "\n")
    return "".join(out)


async def lines_until(queue: asyncio.Queue[AgentEvent], last: str) -> list[str]:
    """The log lines subscribers hear, up to and including `last`."""
    lines: list[str] = []
    deadline = asyncio.get_running_loop().time() + 30
    while last not in lines:
        assert asyncio.get_running_loop().time() < deadline, lines[-5:]
        with contextlib.suppress(TimeoutError):
            event = await asyncio.wait_for(queue.get(), 1)
            lines.extend(event.lines)
    return lines


async def test_a_follower_far_behind_a_flood_jumps_to_the_latest_lines(
    manager: AgentProcessManager,
) -> None:
    process = await manager.spawn_agent("agent001", standin_issue(12, "hang"))
    queue = manager.subscribe()
    manager.tail(process.process_id)  # following from here on
    # Three megabytes of output land at once, more than the follower parses before showing any.
    # (A message each, from no particular agent: nothing here can be skimmed.)
    with process.log_path.open("a") as log:
        log.write(words_burst("line", 30_000, message=lambda i: f"m{i}", main_agent=False))
    lines = await lines_until(queue, "line 29999")
    skipped = [line for line in lines if "MB of output skipped to keep up" in line]
    assert skipped and str(process.log_path) in skipped[0]
    # Only the tail window was parsed: the early lines never reached anyone.
    assert "line 10" not in lines
    assert manager.tail(process.process_id, 1) == ["line 29999"]


async def test_a_burst_of_words_is_skimmed_and_says_how_many_lines_it_did_not_show(
    manager: AgentProcessManager,
) -> None:
    process = await manager.spawn_agent("agent001", standin_issue(13, "hang"))
    queue = manager.subscribe()
    manager.tail(process.process_id)  # following from here on
    # Under the jump-ahead size, but far more lines than a tail shows: one streamed answer.
    with process.log_path.open("a") as log:
        log.write(words_burst("w", 1500, message=lambda i: "msg_burst", main_agent=True))
    lines = await lines_until(queue, "w 1499")
    notes = [line for line in lines if "lines not shown to keep up" in line]
    assert notes and str(process.log_path) in notes[0]
    assert "w 10" not in lines
    status = await manager.monitor_agent(process.process_id)
    assert status.last_text == "w 1499"


async def test_monitor_reports_status_activity_and_resources_of_the_tree(
    agent_paths: Paths,
) -> None:
    async with make_manager(agent_paths) as mgr:
        process = await mgr.spawn_agent("agent001", standin_issue(9, "hang"))
        await asyncio.sleep(0.3)
        status = await mgr.monitor_agent(process.process_id)
        assert status.status.state in (AgentState.STARTING, AgentState.WORKING)
        assert status.last_activity is not None
        assert status.resources.num_processes >= 1
        assert status.resources.rss_bytes > 0
        assert status.resources.open_files >= 3
        await mgr.terminate_all()


async def test_the_registry_has_an_entry_for_every_run_readable_by_anyone(
    manager: AgentProcessManager, agent_paths: Paths
) -> None:
    process = await manager.spawn_agent("agent001", standin_issue(10))
    await manager.wait_finished(process.process_id, timeout=60)
    data = json.loads(agent_paths.registry.read_text())
    entry = data["agents"][process.process_id]
    assert entry["status"]["state"] == "completed"
    assert Registry(agent_paths).get(process.process_id) is not None


def _script(path, body: str):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


SESSION = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize("began", [True, False])
async def test_a_restart_resumes_the_same_session_in_the_same_worktree(
    agent_paths: Paths, tmp_path, began: bool
) -> None:
    calls = tmp_path / "calls.txt"
    init = f'echo \'{{"type":"system","subtype":"init","session_id":"{SESSION}"}}\'\n'
    agent = _script(
        tmp_path / "crashing-agent",
        # One line per start: the folder, then the session options it was given.
        f"{{ printf '%s ' \"$PWD\"; printf '%s\\n' \"$@\" | grep -A1 -x -e --resume -e --session-id"
        f" | tr '\\n' ' '; echo; }} >> {calls}\n" + (init if began else "") + "exit 3\n",
    )
    async with make_manager(
        agent_paths, agents_config(agent), limits=fast_limits(max_restarts=1)
    ) as mgr:
        process = await mgr.spawn_agent("agent001", Issue(1, "one"))
        final = await mgr.wait_finished(process.process_id, timeout=30)
    assert final.status.state is AgentState.FAILED
    assert final.status.error == "exited with code 3 without a result"
    assert final.restarts == 1
    first, second = calls.read_text().splitlines()
    assert first.split()[0] == second.split()[0] == str(process.worktree)
    assert f"--session-id {process.session_id}" in first
    if began:
        # The conversation the agent announced is the one continued.
        assert f"--resume {SESSION}" in second
        assert "--session-id" not in second
    else:
        # Nothing to resume: a new session, never a reused id ("already in use").
        assert "--resume" not in second
        assert "--session-id" in second
        assert process.session_id not in second


async def test_silence_beyond_the_inactivity_limit_gives_a_warning(agent_paths: Paths) -> None:
    limits = fast_limits(inactivity_warning_s=0.3)
    async with make_manager(agent_paths, limits=limits) as mgr:
        queue = mgr.subscribe()
        process = await mgr.spawn_agent("agent001", standin_issue(2, "hang"))
        warning = None
        while warning is None:
            event = await asyncio.wait_for(queue.get(), 10)
            if event.process.process_id == process.process_id:
                warning = event.warning
        assert warning.startswith("no output for ")
        assert mgr.record(process.process_id).warning == warning
        assert mgr.get(process.process_id).is_active  # a warning, not an ending
        await mgr.terminate_all()


async def test_cleanup_on_failure_removes_only_a_worktree_without_work(
    agent_paths: Paths, tmp_path
) -> None:
    idle = _script(tmp_path / "failing-agent", "exit 1\n")
    busy = _script(
        tmp_path / "working-agent",
        "echo draft > draft.txt && git add draft.txt && git commit -qm draft\nexit 1\n",
    )
    dirty = _script(tmp_path / "dirty-agent", "echo draft > draft.txt\nexit 1\n")
    outcomes = {}
    for n, agent in ((1, idle), (2, busy), (3, dirty)):
        async with make_manager(agent_paths, agents_config(agent, cleanup_on_failure=True)) as mgr:
            process = await mgr.spawn_agent(f"agent00{n}", Issue(n, "x"))
            final = await mgr.wait_finished(process.process_id, timeout=30)
            assert final.status.state is AgentState.FAILED
            watcher = mgr.record(process.process_id).watcher_pid
            await asyncio.to_thread(_wait_gone, watcher)
            outcomes[n] = final.worktree.exists()
    assert outcomes == {1: False, 2: True, 3: True}


def _wait_gone(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(30)


RESULT_LINE = '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'


@pytest.mark.parametrize(
    ("healthy_s", "state", "restarts"),
    [(0.3, AgentState.COMPLETED, 2), (60.0, AgentState.FAILED, 1)],
)
async def test_a_run_that_stayed_up_gives_the_restart_budget_back(
    agent_paths: Paths, tmp_path, healthy_s: float, state: AgentState, restarts: int
) -> None:
    runs = tmp_path / "runs.txt"
    agent = _script(
        tmp_path / "flaky-agent",
        f"echo run >> {runs}\n"
        f'if [ "$(wc -l < {runs})" -lt 3 ]; then sleep 0.5; exit 1; fi\n'
        f"echo '{RESULT_LINE}'\n",
    )
    limits = fast_limits(max_restarts=1, healthy_s=healthy_s)
    async with make_manager(agent_paths, agents_config(agent), limits=limits) as mgr:
        process = await mgr.spawn_agent("agent001", Issue(1, "flaky"))
        final = await mgr.wait_finished(process.process_id, timeout=30)
    assert final.status.state is state, final.status
    assert final.restarts == restarts


async def test_tokens_an_agent_prints_never_reach_the_tail_or_the_status(
    agent_paths: Paths, tmp_path
) -> None:
    token = "ghp_" + "A1b2C3d4" * 5
    said = {
        "type": "assistant",
        "message": {"id": "m1", "content": [{"type": "text", "text": f"GH_TOKEN={token} found"}]},
    }
    agent = _script(tmp_path / "leaky-agent", f"echo '{json.dumps(said)}'\nexec sleep 600\n")
    async with make_manager(agent_paths, agents_config(agent)) as mgr:
        process = await mgr.spawn_agent("agent001", Issue(1, "leak"))
        while not mgr.tail(process.process_id):
            await asyncio.sleep(0.05)
        status = await mgr.monitor_agent(process.process_id)
        shown = [*mgr.tail(process.process_id), status.last_text or ""]
        await mgr.terminate_all()
    assert any("GH_TOKEN=***" in line for line in shown), shown
    assert not any(token in line for line in shown)
