"""narrator: a batch audiobook and narration pipeline.

from narrator import load_job, run_job
result = run_job(load_job("pipelines/demo.yaml"))
"""

from .core.errors import NarratorError
from .job.spec import Job, load_job
from .run.engine import RunResult, run_job
from .synthesis.script import Script, prepare_script

__all__ = ["Job", "NarratorError", "RunResult", "Script", "load_job", "prepare_script", "run_job"]
