"""``narrator cast``: the book's quotations found and attributed (job/cast.py), written to JOB.cast.yaml for the
editor, whose corrections a new cast keeps."""

from __future__ import annotations

from ..job.cast import CastFile, cast_of, cast_path, read_cast, write_cast
from ..job.spec import Job
from ..synthesis.script import prepare_script


def cast_job(job: Job) -> tuple[CastFile, int]:
    """Make the cast and write it beside the job: (the cast, how many of the editor's corrections were kept)."""
    path = cast_path(job.path)
    cast, kept = cast_of(job, prepare_script(job).chapters, read_cast(path))
    write_cast(path, cast, job.path.name)
    return cast, kept
