"""What a run checks before it spends anything, and how it words a fatal error."""

from __future__ import annotations

import os
from collections import Counter

from ..core import errors
from ..core.records import ChunkState
from ..job.review import review_counts
from ..synthesis.proofs import proof_endpoint
from ..synthesis.script import Script
from .planning import make_plan


def check_key(script: Script) -> None:
    """Only synthesis needs a key: plan and validate work without one; a run without it stops here, before any
    request (even one that would find every take cached: the next edit would fail an hour in)."""
    env = script.provider.profile.key_env
    if env and not os.environ.get(env, "").strip():
        problem = f"voice.api_key_env: the environment variable {env} is not set; it must hold the API key"
        raise errors.JobError([f"{script.job.path}: {problem}"])
    if script.job.proof is not None:  # the transcription endpoint's, before any take is made
        _, env = proof_endpoint(script.job, script.job.proof)
        if not os.environ.get(env, "").strip():
            problem = f"proof.api_key_env: the environment variable {env} is not set; it must hold the API key"
            raise errors.JobError([f"{script.job.path}: {problem}"])


def check_review(script: Script) -> None:
    """``run --strict``: no book while an editor has rejected a take, or a decision no longer fits its text."""
    counts = review_counts(script.review, script.takes)
    if counts.get("rejected") or counts.get("stale"):
        raise errors.ReviewUnsettled(
            f"{script.job.path}: {counts.get('rejected', 0)} rejected and {counts.get('stale', 0)} stale take(s) in "
            "the review file; settle them (narrator review, narrator redo --rejected) or run without --strict"
        )


def check_budget(script: Script, to_finish: float | None = None) -> None:
    """``to_finish``: the cost already planned (narrator diff's), else planned here."""
    job = script.job
    if to_finish is None:
        to_finish = make_plan(job, script).total.cost_to_finish_usd
    if job.budget_usd is not None and to_finish > job.budget_usd:
        raise errors.BudgetExceeded(
            f"{job.path}: budget_usd: finishing would cost about ${to_finish:.2f}, over the budget of "
            f"${job.budget_usd:.2f}; nothing was sent (see `narrator plan`)"
        )


def fatal_message(exc: errors.FatalProviderError, script: Script, counts: Counter[ChunkState]) -> str:
    """One line: what happened, and what to do about it (each error class knows its own advice)."""
    kept = counts["cached"] + counts["synthesized"]
    advice = exc.advice.format(key_env=script.provider.profile.key_env or "the key's variable")
    kept_line = f"the {kept} finished chunk(s) are kept and will not be requested again"
    return f"{exc.what} ({exc}); {advice}, then rerun: {kept_line}"
