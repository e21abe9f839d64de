"""The emulator's manners: Link pagination, ETags and 304s, the rate-limit budget, injected faults."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest

from clambake_tui.sandbox.emulator import Emulator, Fault

REPO = "/repos/clambake/sandbox"


@pytest.fixture
def gh(emulator: Emulator) -> httpx.Client:
    client = httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=10
    )
    yield client
    client.close()


def links(resp: httpx.Response) -> dict[str, str]:
    header = resp.headers.get("link", "")
    return {m.group(2): m.group(1) for m in re.finditer(r'<([^>]+)>; rel="(\w+)"', header)}


def rels(resp: httpx.Response) -> list[str]:
    return re.findall(r'rel="(\w+)"', resp.headers.get("link", ""))


# pagination ---------------------------------------------------------------------------------
def test_250_issues_come_in_pages_of_30_with_githubs_link_header(
    gh: httpx.Client, emulator: Emulator
) -> None:
    for n in range(250):
        emulator.add_issue(f"issue {n}", labels=["route:ready"])
    first = gh.get(f"{REPO}/issues", params={"labels": "route:ready"})
    assert len(first.json()) == 30
    assert rels(first) == ["next", "last"]
    repo_id = gh.get(REPO).json()["id"]
    assert links(first)["next"] == (
        f"{emulator.url}/repositories/{repo_id}/issues?labels=route%3Aready&per_page=30&page=2"
    )
    assert links(first)["last"].endswith("page=9")

    middle = gh.get(links(first)["next"])
    assert middle.status_code == 200
    assert rels(middle) == ["prev", "next", "last", "first"]

    seen = []
    url: str | None = f"{REPO}/issues?labels=route:ready&per_page=100"
    pages = 0
    while url:
        resp = gh.get(url)
        pages += 1
        seen.extend(i["number"] for i in resp.json())
        last_page = resp
        url = links(resp).get("next")
    assert pages == 3
    assert rels(last_page) == ["prev", "first"]
    assert len(seen) == len(set(seen)) == 250


def test_one_page_has_no_link_header_and_per_page_is_capped_at_100(
    gh: httpx.Client, emulator: Emulator
) -> None:
    for n in range(3):
        emulator.add_issue(f"issue {n}")
    assert "link" not in gh.get(f"{REPO}/issues").headers
    for n in range(120):
        emulator.add_issue(f"more {n}")
    assert len(gh.get(f"{REPO}/issues", params={"per_page": 500}).json()) == 100


# ETags and budget ---------------------------------------------------------------------------
def test_a_matching_if_none_match_answers_304_without_a_body_and_costs_nothing(
    gh: httpx.Client, emulator: Emulator
) -> None:
    emulator.add_issue("x")
    first = gh.get(f"{REPO}/issues")
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = gh.get(f"{REPO}/issues", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    emulator.add_issue("y")
    changed = gh.get(f"{REPO}/issues", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert (
        int(changed.headers["x-ratelimit-remaining"])
        == int(first.headers["x-ratelimit-remaining"]) - 1
    )


def test_a_spent_primary_budget_answers_403_with_remaining_0_and_githubs_message(
    gh: httpx.Client, emulator: Emulator
) -> None:
    emulator.set_rate_limit(limit=3)
    emulator.set_rate_limit(remaining=1)
    assert gh.get(REPO).status_code == 200
    resp = gh.get(REPO)
    assert resp.status_code == 403
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert resp.json()["message"].startswith("API rate limit exceeded for user ID")
    assert int(resp.headers["x-ratelimit-reset"]) > time.time()
    assert gh.get("/rate_limit").status_code == 200  # still free and answered


# faults -------------------------------------------------------------------------------------
def test_a_burst_of_three_502s_then_normal_answers(gh: httpx.Client, emulator: Emulator) -> None:
    emulator.add_fault(Fault.burst(502, times=3, path=r"/issues$"))
    statuses = [gh.get(f"{REPO}/issues").status_code for _ in range(4)]
    assert statuses == [502, 502, 502, 200]
    assert gh.get(REPO).status_code == 200


def test_a_429_with_retry_after(gh: httpx.Client, emulator: Emulator) -> None:
    emulator.add_fault(Fault.too_many_requests(retry_after=2))
    resp = gh.get(REPO)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "2"
    assert gh.get(REPO).status_code == 200


def test_a_secondary_rate_limit_is_403_with_retry_after_and_githubs_message(
    gh: httpx.Client, emulator: Emulator
) -> None:
    emulator.add_fault(Fault.secondary_rate_limit(retry_after=60, method="POST"))
    assert gh.get(REPO).status_code == 200  # scoped to POST
    resp = gh.post(f"{REPO}/issues", json={"title": "x"})
    assert resp.status_code == 403
    assert resp.headers["retry-after"] == "60"
    assert resp.json()["message"].startswith("You have exceeded a secondary rate limit")


def test_a_primary_rate_limit_fault_on_one_route(gh: httpx.Client, emulator: Emulator) -> None:
    emulator.add_fault(Fault.primary_rate_limit(status=429, path=r"/pulls$", times=1))
    resp = gh.get(f"{REPO}/pulls")
    assert resp.status_code == 429
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert gh.get(f"{REPO}/pulls").status_code == 200


def test_slow_answers_arrive_late_and_a_timeout_holds_the_connection_past_the_client(
    gh: httpx.Client, emulator: Emulator
) -> None:
    emulator.add_fault(Fault.slow(0.3, times=1))
    start = time.monotonic()
    assert gh.get(REPO).status_code == 200
    assert time.monotonic() - start >= 0.3
    emulator.add_fault(Fault.timeout(5, times=1))
    with pytest.raises(httpx.ReadTimeout):
        gh.get(REPO, timeout=0.3)


def test_actions_down_fails_dispatches_only(gh: httpx.Client, emulator: Emulator) -> None:
    emulator.add_fault(Fault.actions_down(503))
    resp = gh.post(f"{REPO}/actions/workflows/x.yml/dispatches", json={"ref": "main"})
    assert resp.status_code == 503
    assert resp.json()["status"] == "503"
    assert gh.get(REPO).status_code == 200


def test_faults_come_from_json_as_serve_flags_give_them() -> None:
    fault = Fault.from_json({"kind": "error", "status": 502, "times": 3, "path": "/issues"})
    assert (fault.status, fault.times, fault.path) == (502, 3, "/issues")
    assert Fault.from_json({"kind": "actions_down"}).status == 503
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_json({"kind": "gremlins"})
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_json({"kind": "error", "colour": "red"})


def test_skip_lets_the_first_matching_requests_through(
    gh: httpx.Client, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind=Fault.burst().kind, status=500, times=1, skip=2))
    assert [gh.get(REPO).status_code for _ in range(4)] == [200, 200, 500, 200]


# server -------------------------------------------------------------------------------------
def test_the_emulator_listens_on_loopback_only_and_stops_cleanly(origin_repo) -> None:
    emu = Emulator().start()
    host, port = emu.url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    emu.add_repo("o", "r", origin_repo)
    assert httpx.get(f"{emu.url}/repos/o/r").status_code == 200
    emu.stop()
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass


def test_every_request_is_recorded_for_inspection(gh: httpx.Client, emulator: Emulator) -> None:
    emulator.clear_requests()
    gh.get(REPO)
    gh.post(f"{REPO}/issues", json={"title": "x"})
    assert [(r.method, r.path, r.status) for r in emulator.requests] == [
        ("GET", REPO, 200),
        ("POST", f"{REPO}/issues", 201),
    ]


def test_if_modified_since_answers_304_until_the_issue_changes(
    gh: httpx.Client, emulator: Emulator
) -> None:
    n = emulator.add_issue("x")
    first = gh.get(f"{REPO}/issues/{n}")
    stamp = first.headers["last-modified"]
    assert stamp.endswith(" GMT")
    assert gh.get(f"{REPO}/issues/{n}", headers={"If-Modified-Since": stamp}).status_code == 304
    time.sleep(1.1)  # Last-Modified has whole seconds: the change must land in a later one
    gh.post(f"{REPO}/issues/{n}/labels", json={"labels": ["route:review"]})
    assert gh.get(f"{REPO}/issues/{n}", headers={"If-Modified-Since": stamp}).status_code == 200


def test_the_repository_keeps_its_etag_while_nothing_changes(gh: httpx.Client) -> None:
    etag = gh.get(REPO).headers["etag"]
    time.sleep(1.1)  # a clock in the body would change the ETag every second
    assert gh.get(REPO, headers={"If-None-Match": etag}).status_code == 304


def test_secondary_limits_when_switched_on_refuse_the_81st_creation_in_a_minute(
    origin_repo,
) -> None:
    from clambake_tui.sandbox.emulator.limits import SecondaryLimits

    with Emulator(secondary_limits=SecondaryLimits(content_per_minute=3)) as emu:
        emu.add_repo("clambake", "sandbox", origin_repo)
        gh = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"})
        made = [gh.post(f"{REPO}/issues", json={"title": f"t{n}"}).status_code for n in range(4)]
        assert made == [201, 201, 201, 403]
        refused = gh.post(f"{REPO}/issues", json={"title": "again"})
        assert refused.headers["retry-after"] == "60"
        assert refused.json()["message"].startswith("You have exceeded a secondary rate limit")
        assert gh.get(f"{REPO}/issues").status_code == 200  # reads are not content creation
