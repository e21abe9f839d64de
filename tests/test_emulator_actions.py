"""The emulator's GitHub Actions: workflows from the repository, dispatch rules, runs that really run."""

from __future__ import annotations

import io
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from clambake_tui.sandbox.emulator import Emulator, JobSpec, RunContext, StepSpec
from tests.fixtures.common import git

REPO = "/repos/clambake/sandbox"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")

BUILD_YML = """\
name: Build
on:
  push:
  workflow_dispatch:
    inputs:
      level:
        required: true
      flavour:
        type: choice
        options: [plain, spicy]
        default: plain
      verbose:
        type: boolean
        default: false
  schedule:
    - cron: "*/10 * * * *"
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Test
        run: pytest
"""

PUSH_ONLY_YML = "name: Push only\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: true\n"


def models():
    from githubkit_schemas.latest import models as m

    return m


def commit_files(origin: Path, tmp_path: Path, files: dict[str, str], branch: str = "main") -> str:
    clone = tmp_path / "workflow-clone"
    if not clone.exists():
        git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "fetch", "-q", "origin")
    git(clone, "checkout", "-q", "-B", branch, "origin/main")
    for name, text in files.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", f"files on {branch}")
    git(clone, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
    return git(clone, "rev-parse", "HEAD")


@pytest.fixture
def gh(emulator: Emulator) -> httpx.Client:
    client = httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=10
    )
    yield client
    client.close()


@pytest.fixture
def workflows(origin_repo: Path, tmp_path: Path) -> Path:
    commit_files(
        origin_repo,
        tmp_path,
        {".github/workflows/build.yml": BUILD_YML, ".github/workflows/push.yml": PUSH_ONLY_YML},
    )
    return origin_repo


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def dispatch(gh: httpx.Client, workflow: str = "build.yml", **body) -> httpx.Response:
    body.setdefault("ref", "main")
    return gh.post(f"{REPO}/actions/workflows/{workflow}/dispatches", json=body)


# workflows and dispatch ---------------------------------------------------------------------
def test_workflows_are_listed_from_the_default_branch_with_ids(
    gh: httpx.Client, workflows: Path
) -> None:
    resp = gh.get(f"{REPO}/actions/workflows")
    assert resp.status_code == 200
    body = models().ReposOwnerRepoActionsWorkflowsGetResponse200.model_validate(resp.json())
    assert body.total_count == 2
    by_path = {w.path: w for w in body.workflows}
    build = by_path[".github/workflows/build.yml"]
    assert build.name == "Build"
    assert gh.get(f"{REPO}/actions/workflows/{build.id}").json()["path"] == build.path
    assert gh.get(f"{REPO}/actions/workflows/build.yml").json()["id"] == build.id


def test_dispatch_answers_204_or_200_with_run_details(gh: httpx.Client, workflows: Path) -> None:
    plain = dispatch(gh, inputs={"level": "1"})
    assert plain.status_code == 204
    assert plain.content == b""
    detailed = dispatch(gh, inputs={"level": "1"}, return_run_details=True)
    assert detailed.status_code == 200
    details = models().WorkflowDispatchResponse.model_validate(detailed.json())
    assert details.run_url.endswith(f"/actions/runs/{details.workflow_run_id}")
    run = gh.get(details.run_url.removeprefix(str(gh.base_url).rstrip("/"))).json()
    assert run["event"] == "workflow_dispatch"
    assert run["head_branch"] == "main"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": {"level": "1", "x": "2"}}, 'Unexpected inputs provided: ["x"]'),
        ({"inputs": {}}, "Required input 'level' not provided"),
        ({"ref": "nowhere", "inputs": {"level": "1"}}, "No ref found for: nowhere"),
        (
            {"inputs": {"level": "1", "flavour": "bland"}},
            "Provided value 'bland' for input 'flavour' not in the list of allowed values",
        ),
        (
            {"inputs": {"level": "1", "verbose": "yes"}},
            "Provided value 'yes' for input 'verbose' not in the list of allowed values",
        ),
        (
            {"inputs": {"level": "1", "verbose": True}},
            "Invalid request.\n\nFor 'properties/verbose', true is not a string.",
        ),
    ],
)
def test_dispatch_validation_errors_are_422_with_githubs_messages(
    gh: httpx.Client, workflows: Path, body: dict, message: str
) -> None:
    resp = dispatch(gh, **body)
    assert resp.status_code == 422
    assert resp.json()["message"] == message
    models().ValidationError.model_validate(resp.json())


def test_a_workflow_without_workflow_dispatch_cannot_be_dispatched(
    gh: httpx.Client, workflows: Path
) -> None:
    resp = dispatch(gh, "push.yml")
    assert resp.status_code == 422
    assert resp.json()["message"] == "Workflow does not have 'workflow_dispatch' trigger"


def test_a_workflow_only_on_another_branch_is_404(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/new.yml": BUILD_YML}, branch="topic")
    resp = dispatch(gh, "new.yml", ref="topic", inputs={"level": "1"})
    assert resp.status_code == 404
    assert resp.json()["message"] == "Not Found"


def test_any_branch_may_be_dispatched_once_the_workflow_is_on_the_default_branch(
    gh: httpx.Client, workflows: Path, tmp_path: Path, emulator: Emulator
) -> None:
    sha = commit_files(workflows, tmp_path, {"other.txt": "x"}, branch="feature")
    resp = dispatch(gh, ref="feature", inputs={"level": "1"}, return_run_details=True)
    run = emulator.run(resp.json()["workflow_run_id"])
    assert (run["head_branch"], run["head_sha"]) == ("feature", sha)


# runs, jobs, steps, logs --------------------------------------------------------------------
def test_a_run_goes_queued_in_progress_completed_with_jobs_and_steps(
    gh: httpx.Client, workflows: Path, emulator: Emulator, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec(
                "test (ubuntu)",
                (
                    StepSpec("Say hello", py("print('hello from the step')")),
                    StepSpec(
                        "Wait",
                        py(
                            f"import os,time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
                        ),
                    ),
                ),
            )
        ],
    )
    emulator.hold_runs()
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    queued = gh.get(f"{REPO}/actions/runs/{run_id}").json()
    assert (queued["status"], queued["conclusion"]) == ("queued", None)
    models().WorkflowRun.model_validate(queued)
    assert gh.get(f"{REPO}/actions/runs/{run_id}/logs").status_code == 404

    emulator.release_runs()
    running = emulator.wait_for_run(run_id, "in_progress")
    assert running["status"] == "in_progress"
    jobs = gh.get(f"{REPO}/actions/runs/{run_id}/jobs").json()
    models().ReposOwnerRepoActionsRunsRunIdJobsGetResponse200.model_validate(jobs)
    go.write_text("")
    done = emulator.wait_for_run(run_id)
    assert done["conclusion"] == "success"

    jobs = gh.get(f"{REPO}/actions/runs/{run_id}/jobs").json()
    (job,) = jobs["jobs"]
    assert job["name"] == "test (ubuntu)"
    assert [s["name"] for s in job["steps"]] == ["Set up job", "Say hello", "Wait", "Complete job"]
    assert [s["number"] for s in job["steps"]] == [1, 2, 3, 4]
    assert {s["conclusion"] for s in job["steps"]} == {"success"}
    final = gh.get(f"{REPO}/actions/runs/{run_id}").json()
    models().WorkflowRun.model_validate(final)
    for key in (
        "run_started_at",
        "jobs_url",
        "logs_url",
        "cancel_url",
        "rerun_url",
        "actor",
        "triggering_actor",
    ):
        assert final[key]


def test_the_logs_zip_is_laid_out_like_githubs(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec("build", (StepSpec("Compile", py("print('compiling')")),)),
            JobSpec("test: unit/fast", (StepSpec("Run tests", py("print('2 passed')")),)),
        ],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    emulator.wait_for_run(run_id)
    redirect = gh.get(f"{REPO}/actions/runs/{run_id}/logs")
    assert redirect.status_code == 302
    blob = httpx.get(redirect.headers["location"])  # a pre-signed link: no token needed
    assert blob.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(blob.content))
    assert sorted(archive.namelist()) == sorted(
        [
            "0_build.txt",
            "build/1_Set up job.txt",
            "build/2_Compile.txt",
            "build/3_Complete job.txt",
            "1_test unitfast.txt",
            "test unitfast/1_Set up job.txt",
            "test unitfast/2_Run tests.txt",
            "test unitfast/3_Complete job.txt",
        ]
    )
    step = archive.read("build/2_Compile.txt").decode().splitlines()
    assert all(LOG_LINE.match(line) for line in step)
    assert any(line.endswith(" compiling") for line in step)
    whole = archive.read("0_build.txt").decode()
    assert "compiling" in whole and "Runner name" in whole


def test_job_logs_redirect_to_plain_text(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.register_workflow_steps(
        "build.yml", lambda ctx: [JobSpec("build", (StepSpec("Echo", py("print('the output')")),))]
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    emulator.wait_for_run(run_id)
    job_id = gh.get(f"{REPO}/actions/runs/{run_id}/jobs").json()["jobs"][0]["id"]
    redirect = gh.get(f"{REPO}/actions/jobs/{job_id}/logs")
    assert redirect.status_code == 302
    text = httpx.get(redirect.headers["location"])
    assert text.headers["content-type"].startswith("text/plain")
    assert "the output" in text.text


def test_a_failing_step_fails_the_job_and_skips_the_rest(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec(
                "build",
                (
                    StepSpec("Break", py("import sys; print('boom'); sys.exit(3)")),
                    StepSpec("Never", py("print('unreachable')")),
                ),
            )
        ],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    run = emulator.wait_for_run(run_id)
    assert run["conclusion"] == "failure"
    steps = emulator.jobs(run_id)[0]["steps"]
    assert [(s["name"], s["conclusion"]) for s in steps] == [
        ("Set up job", "success"),
        ("Break", "failure"),
        ("Never", "skipped"),
        ("Complete job", "success"),
    ]


def test_steps_get_the_run_environment_and_a_checkout_of_the_ref(
    gh: httpx.Client, workflows: Path, emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "env.txt"
    code = (
        "import os, pathlib\n"
        "keys = ['GH_TOKEN', 'CLAMBAKE_GITHUB__API_URL', 'GITHUB_REPOSITORY', 'GITHUB_REF_NAME', 'GITHUB_EVENT_NAME']\n"
        f"pathlib.Path({str(out)!r}).write_text('\\n'.join(os.environ[k] for k in keys) + '\\n' + str(pathlib.Path('.github/workflows/build.yml').exists()))\n"
        "open(os.environ['GITHUB_OUTPUT'], 'a').write('answer=42\\n')\n"
    )
    seen: list[RunContext] = []

    def factory(ctx: RunContext) -> list[JobSpec]:
        seen.append(ctx)
        return [
            JobSpec(
                "build",
                (
                    StepSpec("Probe", py(code), id="probe"),
                    StepSpec(
                        "If 42", py("print('ran')"), when=lambda o: o["probe"]["answer"] == "42"
                    ),
                    StepSpec(
                        "If 43", py("print('ran')"), when=lambda o: o["probe"]["answer"] == "43"
                    ),
                ),
            )
        ]

    emulator.register_workflow_steps("build.yml", factory)
    run_id = dispatch(gh, inputs={"level": "7"}, return_run_details=True).json()["workflow_run_id"]
    assert emulator.wait_for_run(run_id)["conclusion"] == "success"
    lines = out.read_text().splitlines()
    assert lines[0] == seen[0].token and lines[0].startswith("ghs_")  # the run's own GITHUB_TOKEN
    assert lines[1:] == [
        emulator.url,
        "clambake/sandbox",
        "main",
        "workflow_dispatch",
        "True",
    ]
    assert seen[0].inputs == {"level": "7", "flavour": "plain", "verbose": "false"}
    steps = {s["name"]: s["conclusion"] for s in emulator.jobs(run_id)[0]["steps"]}
    assert (steps["If 42"], steps["If 43"]) == ("success", "skipped")


def test_unknown_workflows_run_their_declared_jobs_without_executing_them(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    assert emulator.wait_for_run(run_id)["conclusion"] == "success"
    (job,) = emulator.jobs(run_id)
    assert job["name"] == "build"
    assert [s["name"] for s in job["steps"]] == [
        "Set up job",
        "Run actions/checkout@v4",
        "Test",
        "Complete job",
    ]


def test_runs_are_listed_newest_first_with_filters(
    gh: httpx.Client, workflows: Path, emulator: Emulator, tmp_path: Path
) -> None:
    commit_files(workflows, tmp_path, {"f": "1"}, branch="feature")
    first = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    second = dispatch(gh, ref="feature", inputs={"level": "1"}, return_run_details=True).json()[
        "workflow_run_id"
    ]
    emulator.wait_for_run(first)
    emulator.wait_for_run(second)
    runs = gh.get(f"{REPO}/actions/workflows/build.yml/runs").json()
    models().ReposOwnerRepoActionsWorkflowsWorkflowIdRunsGetResponse200.model_validate(runs)
    assert [r["id"] for r in runs["workflow_runs"]] == [second, first]
    assert [r["run_number"] for r in runs["workflow_runs"]] == [2, 1]
    on_feature = gh.get(f"{REPO}/actions/runs", params={"branch": "feature"}).json()
    assert [r["id"] for r in on_feature["workflow_runs"]] == [second]
    assert gh.get(f"{REPO}/actions/runs", params={"status": "success"}).json()["total_count"] == 2
    assert gh.get(f"{REPO}/actions/runs", params={"event": "schedule"}).json()["total_count"] == 0
    created = runs["workflow_runs"][0]["created_at"]
    since = gh.get(f"{REPO}/actions/runs", params={"created": f">={created}"}).json()
    assert second in [r["id"] for r in since["workflow_runs"]]
    paged = gh.get(f"{REPO}/actions/runs", params={"per_page": 1})
    assert paged.json()["total_count"] == 2
    assert len(paged.json()["workflow_runs"]) == 1
    assert 'rel="next"' in paged.headers["link"]


# cancel and re-run --------------------------------------------------------------------------
def test_cancel_kills_the_running_step_and_a_completed_run_answers_409(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [JobSpec("build", (StepSpec("Forever", py("import time; time.sleep(600)")),))],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    emulator.wait_for_run(run_id, "in_progress")
    wait_until(
        lambda: any(
            s["name"] == "Forever" and s["status"] == "in_progress"
            for s in emulator.jobs(run_id)[0]["steps"]
        )
    )
    assert gh.post(f"{REPO}/actions/runs/{run_id}/cancel").status_code == 202
    run = emulator.wait_for_run(run_id, timeout=20)
    assert run["conclusion"] == "cancelled"
    forever = next(s for s in emulator.jobs(run_id)[0]["steps"] if s["name"] == "Forever")
    assert forever["conclusion"] == "cancelled"
    again = gh.post(f"{REPO}/actions/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["message"] == "Cannot cancel a workflow run that is completed."


def test_a_queued_run_is_cancelled_at_once(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.hold_runs()
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    assert gh.post(f"{REPO}/actions/runs/{run_id}/cancel").status_code == 202
    assert emulator.wait_for_run(run_id, timeout=10)["conclusion"] == "cancelled"


def test_rerun_makes_a_second_attempt_and_a_running_run_answers_403(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.hold_runs()
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    busy = gh.post(f"{REPO}/actions/runs/{run_id}/rerun")
    assert busy.status_code == 403
    assert busy.json()["message"] == "This workflow is already running"
    emulator.release_runs()
    emulator.wait_for_run(run_id)
    again = gh.post(f"{REPO}/actions/runs/{run_id}/rerun")
    assert (again.status_code, again.json()) == (201, {})
    run = emulator.wait_for_run(run_id)
    assert run["run_attempt"] == 2
    assert run["previous_attempt_url"].endswith(f"/actions/runs/{run_id}/attempts/1")
    latest = gh.get(f"{REPO}/actions/runs/{run_id}/jobs").json()
    every = gh.get(f"{REPO}/actions/runs/{run_id}/jobs", params={"filter": "all"}).json()
    assert latest["total_count"] == 1
    assert every["total_count"] == 2
    assert {j["run_attempt"] for j in every["jobs"]} == {1, 2}
    first = gh.get(f"{REPO}/actions/runs/{run_id}/attempts/1").json()
    assert first["run_attempt"] == 1


def test_rerun_failed_jobs_reruns_only_the_failed_ones(
    gh: httpx.Client, workflows: Path, emulator: Emulator, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec("good", (StepSpec("Pass", py("print('fine')")),)),
            JobSpec(
                "flaky",
                (
                    StepSpec(
                        "Maybe",
                        py(f"import os,sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)"),
                    ),
                ),
            ),
        ],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    assert emulator.wait_for_run(run_id)["conclusion"] == "failure"
    flag.write_text("")
    assert gh.post(f"{REPO}/actions/runs/{run_id}/rerun-failed-jobs").status_code == 201
    run = emulator.wait_for_run(run_id)
    assert (run["run_attempt"], run["conclusion"]) == (2, "success")
    assert {j["name"]: j["conclusion"] for j in emulator.jobs(run_id)} == {
        "good": "success",
        "flaky": "success",
    }


def test_schedule_ticks_start_schedule_runs_on_the_default_branch(
    workflows: Path, emulator: Emulator
) -> None:
    (run_id,) = emulator.tick_schedule()
    run = emulator.wait_for_run(run_id)
    assert (run["event"], run["head_branch"], run["conclusion"]) == ("schedule", "main", "success")


def test_a_job_past_its_timeout_is_cancelled_and_a_step_past_its_own_fails(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec(
                "slow job",
                (StepSpec("Sleep", py("import time; time.sleep(60)")),),
                timeout_seconds=0.5,
            ),
            JobSpec(
                "slow step",
                (StepSpec("Sleep", py("import time; time.sleep(60)"), timeout_seconds=0.5),),
            ),
        ],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    run = emulator.wait_for_run(run_id, timeout=30)
    jobs = {j["name"]: j for j in emulator.jobs(run_id)}
    assert jobs["slow job"]["conclusion"] == "cancelled"
    assert "exceeded the maximum execution time" in emulator.job_log(jobs["slow job"]["id"])
    assert jobs["slow step"]["conclusion"] == "failure"
    assert run["conclusion"] == "cancelled"


CONCURRENT_YML = """\
name: One at a time
on: workflow_dispatch
concurrency:
  group: one-${{ github.repository }}
  cancel-in-progress: false
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: true
"""


def test_a_concurrency_group_runs_one_at_a_time_and_keeps_only_the_newest_waiting(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path, emulator: Emulator
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/one.yml": CONCURRENT_YML})
    go = tmp_path / "go"
    emulator.register_workflow_steps(
        "one.yml",
        lambda ctx: [
            JobSpec(
                "a",
                (
                    StepSpec(
                        "Wait",
                        py(
                            f"import os,time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
                        ),
                    ),
                ),
            )
        ],
    )

    def start() -> int:
        return dispatch(gh, "one.yml", return_run_details=True).json()["workflow_run_id"]

    first = start()
    emulator.wait_for_run(first, "in_progress")
    second = start()
    wait_until(lambda: emulator.run(second)["status"] == "pending")
    third = start()
    assert emulator.wait_for_run(second)["conclusion"] == "cancelled"
    wait_until(lambda: emulator.run(third)["status"] == "pending")
    assert emulator.run(first)["status"] == "in_progress"
    go.write_text("")
    assert emulator.wait_for_run(first)["conclusion"] == "success"
    assert emulator.wait_for_run(third)["conclusion"] == "success"
    listed = gh.get(f"{REPO}/actions/runs", params={"status": "cancelled"}).json()
    assert [r["id"] for r in listed["workflow_runs"]] == [second]


PERMISSIONS_YML = """\
name: Scoped
on: workflow_dispatch
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    permissions:
      issues: write
      contents: read
    steps:
      - run: true
"""


def test_a_run_gets_its_own_token_with_the_workflows_permissions_until_it_ends(
    origin_repo: Path, tmp_path: Path, emulator: Emulator, gh: httpx.Client
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/scoped.yml": PERMISSIONS_YML})
    go = tmp_path / "go"
    tokens: list[str] = []

    def factory(ctx: RunContext) -> list[JobSpec]:
        tokens.append(ctx.token)
        wait = f"import os,time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
        return [JobSpec("a", (StepSpec("Wait", py(wait)),))]

    emulator.register_workflow_steps("scoped.yml", factory)
    n = emulator.add_issue("x")
    run_id = dispatch(gh, "scoped.yml", return_run_details=True).json()["workflow_run_id"]
    emulator.wait_for_run(run_id, "in_progress")
    bot = httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {tokens[0]}"})
    labelled = bot.post(f"{REPO}/issues/{n}/labels", json={"labels": ["route:review"]})
    assert labelled.status_code == 200
    assert bot.get(f"{REPO}/git/ref/heads/main").status_code == 200
    denied = bot.post(f"{REPO}/git/refs", json={"ref": "refs/heads/x", "sha": "0" * 40})
    assert (denied.status_code, denied.json()["message"]) == (
        403,
        "Resource not accessible by integration",
    )
    assert bot.get(f"{REPO}/pulls").status_code == 403
    assert bot.get(f"{REPO}/actions/runs").status_code == 403
    assert bot.get("/user").status_code == 403
    assert bot.get(REPO).status_code == 200
    assert bot.get(REPO).headers["x-ratelimit-limit"] == "1000"
    go.write_text("")
    emulator.wait_for_run(run_id)
    wait_until(lambda: bot.get(REPO).status_code == 401)


def test_a_disabled_workflow_refuses_dispatch_and_skips_schedules(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    assert gh.put(f"{REPO}/actions/workflows/build.yml/disable").status_code == 204
    assert gh.get(f"{REPO}/actions/workflows/build.yml").json()["state"] == "disabled_manually"
    resp = dispatch(gh, inputs={"level": "1"})
    assert resp.status_code == 422
    assert resp.json()["message"] == "Cannot trigger a 'workflow_dispatch' on a disabled workflow"
    assert emulator.tick_schedule() == []
    assert gh.put(f"{REPO}/actions/workflows/build.yml/enable").status_code == 204
    assert dispatch(gh, inputs={"level": "1"}).status_code == 204


def test_logs_without_step_files_as_github_often_serves_them(
    origin_repo: Path, tmp_path: Path
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/build.yml": BUILD_YML})
    with Emulator(step_logs=False, queue_delay=0) as emu:
        emu.add_repo("clambake", "sandbox", origin_repo)
        run_id = emu.dispatch("build.yml", inputs={"level": "1"})
        emu.wait_for_run(run_id)
        gh = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"})
        location = gh.get(f"{REPO}/actions/runs/{run_id}/logs").headers["location"]
        names = zipfile.ZipFile(io.BytesIO(httpx.get(location).content)).namelist()
    assert sorted(names) == ["0_build.txt", "build/system.txt"]


def test_a_new_run_shows_in_lists_only_after_the_listing_delay(
    origin_repo: Path, tmp_path: Path
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/build.yml": BUILD_YML})
    with Emulator(run_listed_after=0.5, queue_delay=0) as emu:
        emu.add_repo("clambake", "sandbox", origin_repo)
        gh = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"})
        started = time.monotonic()
        run_id = emu.dispatch("build.yml", inputs={"level": "1"})
        first = gh.get(f"{REPO}/actions/runs").json()
        if time.monotonic() - started < 0.5:
            assert first["total_count"] == 0
        assert gh.get(f"{REPO}/actions/runs/{run_id}").status_code == 200  # by id: at once
        wait_until(lambda: gh.get(f"{REPO}/actions/runs").json()["total_count"] == 1)


def test_the_emulated_cron_fires_schedule_runs(origin_repo: Path, tmp_path: Path) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/build.yml": BUILD_YML})
    with Emulator(schedule_every=0.1, queue_delay=0) as emu:
        emu.add_repo("clambake", "sandbox", origin_repo)
        wait_until(lambda: any(r["event"] == "schedule" for r in emu.runs()))


def test_concurrent_requests_keep_the_state_consistent(
    gh: httpx.Client, emulator: Emulator
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    n = emulator.add_issue("busy")
    labels = [f"agent{i:03d}" for i in range(1, 41)]

    def add(label: str) -> int:
        return gh.post(f"{REPO}/issues/{n}/labels", json={"labels": [label]}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(add, labels)) == {200}
    assert sorted(emulator.issue_labels(n)) == labels


def test_background_processes_of_a_step_live_until_the_job_ends(
    gh: httpx.Client, workflows: Path, emulator: Emulator, tmp_path: Path
) -> None:
    pid_file = tmp_path / "bg.pid"
    start_bg = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
    )
    check_alive = f"import os; os.kill(int(open({str(pid_file)!r}).read()), 0)"
    emulator.register_workflow_steps(
        "build.yml",
        lambda ctx: [
            JobSpec(
                "build", (StepSpec("Start", py(start_bg)), StepSpec("Still there", py(check_alive)))
            )
        ],
    )
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    assert emulator.wait_for_run(run_id)["conclusion"] == "success"
    pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie waiting for its reaper counts as ended (and it may be reaped meanwhile).
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_until(gone)


def test_an_older_enterprise_server_answers_dispatch_with_204_only(
    origin_repo: Path, tmp_path: Path
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/build.yml": BUILD_YML})
    with Emulator(run_details=False, queue_delay=0) as emu:
        emu.add_repo("clambake", "sandbox", origin_repo)
        gh = httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"})
        resp = dispatch(gh, inputs={"level": "1"}, return_run_details=True)
        assert (resp.status_code, resp.content) == (204, b"")
        assert len(emu.runs()) == 1


def test_a_run_that_cannot_start_ends_as_startup_failure(
    gh: httpx.Client, workflows: Path, emulator: Emulator
) -> None:
    def broken(ctx: RunContext) -> list[JobSpec]:
        raise RuntimeError("no plan")

    emulator.register_workflow_steps("build.yml", broken)
    run_id = dispatch(gh, inputs={"level": "1"}, return_run_details=True).json()["workflow_run_id"]
    run = emulator.wait_for_run(run_id, timeout=10)
    assert (run["status"], run["conclusion"]) == ("completed", "startup_failure")
    assert emulator.jobs(run_id) == []


def test_a_run_still_queued_at_the_head_of_its_group_is_not_cancelled_by_newer_ones(
    gh: httpx.Client, origin_repo: Path, tmp_path: Path, emulator: Emulator
) -> None:
    commit_files(origin_repo, tmp_path, {".github/workflows/one.yml": CONCURRENT_YML})
    emulator.hold_runs()
    first, second, third = (
        dispatch(gh, "one.yml", return_run_details=True).json()["workflow_run_id"] for _ in range(3)
    )
    emulator.release_runs()
    assert emulator.wait_for_run(first)["conclusion"] == "success"
    assert emulator.wait_for_run(second)["conclusion"] == "cancelled"
    assert emulator.wait_for_run(third)["conclusion"] == "success"
