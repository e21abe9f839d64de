"""GitHub emulator numbers: start-up, a GET round trip, 250 issues paged, dispatch to completed.

Run: .venv/bin/python bench/emulator.py
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from clambake_tui.sandbox.emulator import Emulator, JobSpec, StepSpec

WORKFLOW = "name: B\non:\n  workflow_dispatch:\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: true\n"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _origin(root: Path) -> Path:
    seed = root / "seed"
    (seed / ".github/workflows").mkdir(parents=True)
    (seed / ".github/workflows/b.yml").write_text(WORKFLOW)
    _git(root, "init", "-q", "-b", "main", str(seed))
    _git(seed, "add", "-A")
    _git(seed, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "seed")
    _git(root, "clone", "-q", "--bare", str(seed), str(root / "origin.git"))
    return root / "origin.git"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        origin = _origin(Path(tmp))
        starts = []
        for _ in range(10):
            t = time.perf_counter()
            emu = Emulator(queue_delay=0.0).start()
            starts.append(time.perf_counter() - t)
            emu.stop()
        emu = Emulator(queue_delay=0.0).start()
        emu.add_repo("o", "r", origin)
        for n in range(250):
            emu.add_issue(f"issue {n}", labels=["route:ready"])
        emu.register_workflow_steps(
            "b.yml", lambda ctx: [JobSpec("b", (StepSpec("ok", ("true",)),))]
        )
        gh = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"})
        gets = []
        for _ in range(50):
            t = time.perf_counter()
            gh.get("/repos/o/r/issues/1")
            gets.append(time.perf_counter() - t)
        t = time.perf_counter()
        url: str | None = "/repos/o/r/issues?per_page=100&labels=route:ready"
        while url:
            resp = gh.get(url)
            url = resp.links.get("next", {}).get("url")
        paged = time.perf_counter() - t
        t = time.perf_counter()
        run_id = gh.post(
            "/repos/o/r/actions/workflows/b.yml/dispatches",
            json={"ref": "main", "return_run_details": True},
        ).json()["workflow_run_id"]
        emu.wait_for_run(run_id)
        run_seconds = time.perf_counter() - t
        emu.stop()
    print(
        f"start():                  median {statistics.median(starts) * 1000:.1f} ms, max {max(starts) * 1000:.1f} ms"
    )
    print(f"GET issue round trip:     median {statistics.median(gets) * 1000:.1f} ms")
    print(f"250 issues, 3 pages:      {paged * 1000:.0f} ms")
    print(f"dispatch -> completed:    {run_seconds * 1000:.0f} ms (one job, one step, fresh clone)")


if __name__ == "__main__":
    main()
