"""The local executor: a book's plan carried out in this process. Its takes are requested on the event loop (a
catalogue's books share the pace and the requests in flight) and, with ``proof:``, heard as they are stored
(synthesis/proofs.py), while a thread of its own builds each chapter on every core as soon as the chapter's takes
are settled (synthesis/gate.py), then joins the book (build/)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from ..build.outputs import build_outputs
from ..synthesis.costs import run_cost
from ..synthesis.gate import ChapterGate
from ..synthesis.proofs import Proofreader, Request
from ..synthesis.scheduler import Pace, SynthesisOutcome, TakeResult, Work, synthesize_all
from ..synthesis.script import Script
from .work import BookPlan, Executed, RunLog


class LocalExecutor:
    """``progress``: the bars on a terminal (None: only if stderr is one)."""

    def __init__(self, pace: Pace, progress: bool | None = None):
        self.pace = pace
        self.progress = progress

    async def execute(self, plan: BookPlan, log: RunLog) -> Executed:
        script = plan.script
        waits = [step.waits_for for step in plan.chapters]
        proofs = None
        if script.job.proof is not None:  # a chapter waits for each of its takes to be heard (and retaken) too
            proofs = Proofreader(script, script.job.proof, lambda key: gate.stored(key))
            settled = await asyncio.to_thread(proofs.settled_before, plan.cached)
            waits = [step.takes - settled for step in plan.chapters]
        gate = ChapterGate(waits)
        outcome, proof = SynthesisOutcome(), None
        with _FilesBar(self.progress) as bar:
            # the back end starts now, and builds each chapter as soon as its takes are stored (and heard)
            built_by = (script, plan.previous, log.timings, bar.update, gate)
            building = asyncio.create_task(asyncio.to_thread(build_outputs, *built_by))
            try:
                if proofs is not None:
                    proofs.start(plan.cached)
                stored = gate.stored if proofs is None else proofs.stored
                outcome = await synthesize_takes(script, plan.takes, self.pace, stored, self.progress, len(plan.reused))
                if proofs is not None:
                    proof = await proofs.finish(self.retakes(script), spent=run_cost(script, outcome))
                    outcome = outcome.plus(proof.synthesis)
            except BaseException:
                building.cancel()  # its thread ends by itself: the gate closes below
                if proofs is not None:
                    proofs.abort()
                raise
            finally:
                gate.close()  # no more takes come: a chapter still without its takes will not be built
                log.synthesized(outcome)
            built = await building
        return Executed(outcome, built, frozenset({script.prepared}), proof)

    def retakes(self, script: Script) -> Request:
        """How proof-listening asks for new takes: as synthesis does, at the same pace."""

        async def request(work: Sequence[Work], stored: Callable[[str], None]) -> SynthesisOutcome:
            return await synthesize_takes(script, work, self.pace, stored, progress=False)

        return request


async def synthesize_takes(
    script: Script,
    work: Sequence[Work],
    pace: Pace,
    stored: Callable[[str], None] | None = None,
    progress: bool | None = None,
    reused: int = 0,
) -> SynthesisOutcome:
    """``work``'s takes, in reading order, with a progress bar on a terminal (``reused``: chunks already done);
    ``stored`` hears of each take stored."""
    chunks_per_key = Counter(script.keys.values())
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=len(script.chunks), initial=reused, unit="chunk", desc="narrating", disable=not show, dynamic_ncols=True
    )
    new_audio = 0.0

    def on_take(key: str, result: TakeResult) -> None:
        nonlocal new_audio
        if stored is not None and result.status in ("synthesized", "cached"):  # cached: made meanwhile elsewhere
            stored(key)
        if result.status == "synthesized":
            new_audio += result.duration
            bar.set_postfix_str(f"{new_audio / 60:.1f} min of new audio", refresh=False)
        if result.status != "skipped":
            bar.update(chunks_per_key[key])

    job = script.job
    try:
        return await synthesize_all(
            work,
            script.cache,
            concurrency=job.concurrency,
            limiter=pace.limiter,
            retry=job.retry,
            on_take=on_take,
            slots=pace.slots,
            priority=pace.priority,
            claims=pace.claims,
        )
    finally:
        bar.close()


class _FilesBar:
    """The audio files being made after synthesis, as a second progress bar (on a terminal): the display keeps
    moving while the last chapters encode."""

    def __init__(self, progress: bool | None):
        self.show = sys.stderr.isatty() if progress is None else progress
        self.bar: tqdm[Any] | None = None

    def update(self, done: int, total: int) -> None:
        if not self.show or not total:
            return
        bar = self.bar or tqdm(total=total, unit="file", desc="encoding", dynamic_ncols=True)
        self.bar = bar
        bar.total, bar.n = total, done
        bar.refresh()

    def __enter__(self) -> _FilesBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
