"""New takes for chosen takes (``narrator redo``, and the page's "regenerate"): each is a take of its own, cached
under its own key beside the old ones, and the newest is the one the book uses until the review file pins
another. Then ``narrator run`` builds with it, encoding again only the files that hold it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core import errors
from ..job.review import ReviewFile, current_decision, update_review
from ..job.spec import Job
from ..run.preflight import check_key
from ..synthesis.scheduler import Limiter, SynthesisOutcome, Work, synthesize_all
from ..synthesis.script import Script, prepare_script
from ..text.takes import Take


@dataclass
class RedoResult:
    takes: list[str]  # the ids of the takes made again
    outcome: SynthesisOutcome


def select_takes(
    script: Script, *, rejected: bool = False, chunks: Sequence[str] = (), chapters: Sequence[int] = ()
) -> list[Take]:
    """The takes a ``redo`` names: the rejected ones, those holding the chunk ids given (a paragraph's id selects
    its take), those of the chapters given (numbers from 1). An unknown id or chapter is the user's mistake."""
    unknown = [c for c in chunks if c not in script.take_of]
    if unknown:
        raise errors.JobError([f"--chunk: no chunk {unknown[0]} in this job (see manifest.json chunks[].id)"])
    bad = [n for n in chapters if not 1 <= n <= len(script.chapters)]
    if bad:
        raise errors.JobError([f"--chapter: the book has chapters 1 to {len(script.chapters)}, not {bad[0]}"])
    wanted = {script.take_of[c].id for c in chunks}
    chosen = []
    for take in script.takes:
        decision = script.decision(take)
        if (
            take.id in wanted
            or take.chapter + 1 in chapters
            or (rejected and decision is not None and decision.status == "rejected")
        ):
            chosen.append(take)
    return chosen


def redo(job: Job, pick: Callable[[Script], list[Take]]) -> RedoResult:
    """Ask for one new take of each take ``pick`` names, and record it in the review file."""
    script = prepare_script(job)
    takes = pick(script)
    if not takes:
        return RedoResult([], SynthesisOutcome())
    check_key(script)

    def ask_again(review: ReviewFile) -> None:
        for take in takes:
            found = current_decision(review, take)
            # the newest take is chosen; a new take is not yet heard, approved as the old one was
            update = {"redone": found.redone + 1, "chosen": None, "status": "unheard"}
            review.takes[take.id] = found.model_copy(update=update)

    update_review(job.path, ask_again)
    script = prepare_script(job)  # with the new keys
    by_id = {t.id: t for t in script.takes}
    work = []
    for take in (by_id[t.id] for t in takes):
        work.append(Work(script.key_of(take), script.text_of(take), take.tokens, script.provider_of(take)))
    limiter = Limiter(job.requests_per_minute, job.tokens_per_minute)
    outcome = asyncio.run(
        synthesize_all(work, script.cache, concurrency=job.concurrency, limiter=limiter, retry=job.retry)
    )
    return RedoResult([t.id for t in takes], outcome)
