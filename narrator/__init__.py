"""narrator: a batch audiobook and narration pipeline.

from narrator import load_job, run_job
result = run_job(load_job("pipelines/demo.yaml"))
"""

from .errors import NarratorError
from .pipeline import RunResult, prepare_job, run_job
from .spec import Job, load_job

__all__ = ["Job", "NarratorError", "RunResult", "load_job", "prepare_job", "run_job"]
