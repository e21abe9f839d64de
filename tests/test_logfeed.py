"""The dashboard's log feed: agents' stream-json logs in, bounded readable lines out."""

from __future__ import annotations

import json
from pathlib import Path

from clambake_tui.tui.logfeed import LogFeed, readable_lines


def words(text: str) -> bytes:
    obj = {
        "type": "assistant",
        "message": {"id": "msg_1", "content": [{"type": "text", "text": text}]},
        "parent_tool_use_id": None,
    }
    return json.dumps(obj).encode() + b"\n"


def test_new_lines_arrive_readable_and_a_line_cut_between_reads_is_whole(tmp_path: Path) -> None:
    log = tmp_path / "agent.jsonl"
    log.write_bytes(b"")
    feed = LogFeed()
    feed.track("a1", log)
    first = words("hello there")
    with log.open("ab") as out:
        out.write(first + words("second")[:20])
    feed.poll()
    assert feed.drain("a1") == ["hello there"]
    with log.open("ab") as out:
        out.write(words("second")[20:])
    feed.poll()
    assert feed.drain("a1") == ["second"]
    assert feed.drain("a1") == []


def test_a_flood_is_cut_to_the_lines_a_pane_shows_and_says_what_it_skipped(
    tmp_path: Path,
) -> None:
    log = tmp_path / "agent.jsonl"
    log.write_bytes(b"")
    feed = LogFeed(max_read_lines=20)
    feed.track("a1", log)
    log.write_bytes(b"".join(words(f"line {n}") for n in range(5000)))
    feed.poll()
    lines = feed.drain("a1")
    assert lines[0].startswith("… ") and "skipped (too fast to show)" in lines[0]
    assert lines[1:] == [f"line {n}" for n in range(4980, 5000)]


def test_a_truncated_log_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "agent.jsonl"
    log.write_bytes(b"".join(words(f"old {n}") for n in range(3)))
    feed = LogFeed()
    feed.track("a1", log, backlog_bytes=1 << 20)
    feed.poll()
    assert feed.drain("a1") == ["old 0", "old 1", "old 2"]
    log.write_bytes(words("new"))
    feed.poll()
    assert feed.drain("a1") == ["new"]


def test_buffers_stay_bounded_and_untracked_agents_are_dropped(tmp_path: Path) -> None:
    log = tmp_path / "agent.jsonl"
    log.write_bytes(b"")
    feed = LogFeed(buffer_lines=50, max_read_lines=20)
    feed.track("a1", log)
    for round_ in range(10):
        with log.open("ab") as out:
            out.write(b"".join(words(f"r{round_} {n}") for n in range(30)))
        feed.poll()
    assert feed.pending("a1") == 50
    feed.untrack("a1")
    assert feed.tracked() == [] and feed.drain("a1") == []


def test_readable_lines_render_events_not_json() -> None:
    assert readable_lines(words("just words").rstrip(b"\n")) == ["just words"]
