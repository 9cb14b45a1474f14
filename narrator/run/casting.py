"""``narrator cast``: the book's quotations found and attributed (job/cast.py), written to JOB.cast.yaml for the
editor, whose corrections a new cast keeps."""

from __future__ import annotations

from ..job.cast import CastMade, cast_of, cast_path, read_cast, write_cast
from ..job.spec import Job
from ..synthesis.script import prepare_script


def cast_job(job: Job) -> CastMade:
    """Make the cast (asking the model, with ``attribution: model``) and write it beside the job."""
    path = cast_path(job.path)
    made = cast_of(job, prepare_script(job).chapters, read_cast(path), ask_model=True)
    write_cast(path, made.cast, job.path.name)
    return made
