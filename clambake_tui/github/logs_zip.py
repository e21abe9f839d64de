"""Unpacking an Actions run's logs zip into per-job and per-step texts.

GitHub lays the archive out as `<ordinal>_<job name>.txt` (the whole job) plus a folder per job,
`<job name>/<step number>_<step name>.txt` (one step). Job names in file names lose `/` and `:`
and are cut at 90 characters; since 2025 step files are often missing (only the whole-job file
and `<job>/system.txt`), so callers fall back to the whole-job file, then to the job logs endpoint.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

from clambake_tui.errors import GitHubError

__all__ = ["JobLogFiles", "StepLogFile", "read_logs_zip", "job_file_name", "decode_log"]

_JOB_FILE = re.compile(r"^(?P<ordinal>\d+)_(?P<name>.+)\.txt$")
_STEP_FILE = re.compile(r"^(?P<number>\d+)_(?P<name>.+)\.txt$")
_NAME_LIMIT = 90
# A logs zip is text; anything past this is not worth holding in memory.
_MAX_TOTAL_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StepLogFile:
    number: int
    name: str
    text: str


@dataclass(slots=True)
class JobLogFiles:
    """What the archive holds for one job (folder name as GitHub wrote it)."""

    name: str
    ordinal: int | None = None
    whole: str | None = None
    steps: list[StepLogFile] = field(default_factory=list)


def job_file_name(job_name: str) -> str:
    """A job's name as it appears in the archive's file and folder names."""
    return job_name.replace("/", "").replace(":", "")[:_NAME_LIMIT]


def decode_log(data: bytes) -> str:
    # GitHub's log files start with a UTF-8 byte order mark.
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def read_logs_zip(data: bytes, *, what: str = "the run") -> list[JobLogFiles]:
    """Jobs in archive order (by ordinal, then name), each with its whole file and step files."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise GitHubError(f"the logs archive of {what} is not a zip file; try again") from None
    jobs: dict[str, JobLogFiles] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            total += info.file_size
            if total > _MAX_TOTAL_BYTES:
                raise GitHubError(f"the logs archive of {what} is larger than 256 MB; not unpacked")
            parts = [p for p in info.filename.replace("\\", "/").split("/") if p]
            try:
                text = decode_log(archive.read(info))
            except (zipfile.BadZipFile, OSError, ValueError):
                raise GitHubError(f"the logs archive of {what} is damaged; try again") from None
            _place(jobs, parts, text)
    ordered = sorted(
        jobs.values(),
        key=lambda j: (j.ordinal if j.ordinal is not None else 1 << 30, j.name),
    )
    for job in ordered:
        job.steps.sort(key=lambda s: s.number)
    return ordered


def _place(jobs: dict[str, JobLogFiles], parts: list[str], text: str) -> None:
    if len(parts) == 1:
        match = _JOB_FILE.match(parts[0])
        if match is None:
            return
        job = jobs.setdefault(match.group("name"), JobLogFiles(match.group("name")))
        job.ordinal = int(match.group("ordinal"))
        job.whole = text
        return
    if len(parts) != 2:
        return
    folder, file = parts
    match = _STEP_FILE.match(file)
    if match is None:
        # `system.txt` and anything else that is not a numbered step.
        return
    job = jobs.setdefault(folder, JobLogFiles(folder))
    job.steps.append(StepLogFile(int(match.group("number")), match.group("name"), text))
