"""Every route the product uses, answered by the emulator and checked against GitHub's own schema."""

from __future__ import annotations

from pathlib import Path

import httpx

from clambake_tui.sandbox.emulator import Emulator, JobSpec, StepSpec
from tests.fixtures.common import git
from tests.fixtures.github import SchemaCheck

WORKFLOW = """\
name: Bundle
on:
  workflow_dispatch:
    inputs:
      force_bundle:
        type: boolean
        default: false
jobs:
  bundle:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
"""


def _push(origin: Path, tmp_path: Path, branch: str, files: dict[str, str]) -> None:
    clone = tmp_path / "tour-clone"
    if not clone.exists():
        git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "-B", branch, "origin/main")
    for name, text in files.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", branch)
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")


async def test_a_tour_of_every_route_matches_githubs_schema(
    emulator: Emulator, origin_repo: Path, tmp_path: Path, github_schema: SchemaCheck
) -> None:
    _push(origin_repo, tmp_path, "main", {".github/workflows/clambake-bundling.yml": WORKFLOW})
    _push(origin_repo, tmp_path, "agent001/1-words", {"words.txt": "a\n"})
    emulator.register_workflow_steps(
        "clambake-bundling.yml",
        lambda ctx: [JobSpec("bundle", (StepSpec("Bundle", lines=("ok",)),))],
    )
    n = emulator.add_issue("Count words", "body", ["route:ready"], assignees=["someone"])
    emulator.add_comment(n, "first")
    r = "/repos/clambake/sandbox"
    async with httpx.AsyncClient(
        base_url=emulator.url,
        headers={"Authorization": f"Bearer {emulator.token}"},
        event_hooks=github_schema.hooks(),
    ) as gh:
        for path in ("/rate_limit", "/user", r, f"{r}/branches/main", f"{r}/git/ref/heads/main"):
            assert (await gh.get(path)).status_code == 200, path
        assert (await gh.get(f"{r}/issues", params={"labels": "route:ready"})).status_code == 200
        assert (await gh.get(f"{r}/issues/{n}")).status_code == 200
        assert (
            await gh.post(f"{r}/issues/{n}/labels", json={"labels": ["agent001"]})
        ).status_code == 200
        assert (await gh.delete(f"{r}/issues/{n}/labels/route:ready")).status_code == 200
        assert (await gh.delete(f"{r}/issues/{n}/labels/route:ready")).status_code == 404
        assert (
            await gh.post(f"{r}/issues/{n}/assignees", json={"assignees": ["op"]})
        ).status_code == 201
        removed = await gh.request(
            "DELETE", f"{r}/issues/{n}/assignees", json={"assignees": ["op"]}
        )
        assert removed.status_code == 200
        assert (await gh.get(f"{r}/issues/{n}/comments")).status_code == 200
        assert (await gh.post(f"{r}/issues/{n}/comments", json={"body": "hi"})).status_code == 201
        pr = await gh.post(
            f"{r}/pulls", json={"title": "Words", "head": "agent001/1-words", "base": "main"}
        )
        assert pr.status_code == 201
        dup = await gh.post(
            f"{r}/pulls", json={"title": "Words", "head": "agent001/1-words", "base": "main"}
        )
        assert dup.status_code == 422
        assert (
            await gh.get(f"{r}/pulls", params={"head": "clambake:agent001/1-words"})
        ).status_code == 200
        assert (await gh.get(f"{r}/pulls/{pr.json()['number']}")).status_code == 200
        assert (await gh.get(f"{r}/issues")).status_code == 200  # now with a pull request in it

        assert (await gh.get(f"{r}/actions/workflows")).status_code == 200
        wf = f"{r}/actions/workflows/clambake-bundling.yml"
        assert (await gh.post(f"{wf}/dispatches", json={"ref": "main"})).status_code == 204
        detailed = await gh.post(
            f"{wf}/dispatches",
            json={"ref": "main", "inputs": {"force_bundle": "true"}, "return_run_details": True},
        )
        assert detailed.status_code == 200
        bad = await gh.post(f"{wf}/dispatches", json={"ref": "main", "inputs": {"x": "1"}})
        assert bad.status_code == 422
        run_id = detailed.json()["workflow_run_id"]
        emulator.wait_for_run(run_id)
        assert (await gh.get(f"{wf}/runs")).status_code == 200
        assert (await gh.get(f"{r}/actions/runs/{run_id}")).status_code == 200
        assert (await gh.get(f"{r}/actions/runs/{run_id}/jobs")).status_code == 200
        assert (await gh.get(f"{r}/actions/runs/{run_id}/logs")).status_code == 302
        assert (await gh.post(f"{r}/actions/runs/{run_id}/cancel")).status_code == 409
        assert (await gh.post(f"{r}/actions/runs/{run_id}/rerun")).status_code == 201
        emulator.wait_for_run(run_id)
        assert (await gh.post(f"{r}/actions/runs/{run_id}/rerun-failed-jobs")).status_code == 403
    assert not github_schema.unchecked, github_schema.unchecked
    assert len(github_schema.validated) >= 20
