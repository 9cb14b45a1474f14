"""narrator: a batch audiobook and narration pipeline.

from narrator import load_job, run_job
result = run_job(load_job("pipelines/demo.yaml"))
"""

from .errors import NarratorError
from .pipeline import RunResult, run_job
from .script import Script, prepare_script
from .spec import Job, load_job

__all__ = ["Job", "NarratorError", "RunResult", "Script", "load_job", "prepare_script", "run_job"]
