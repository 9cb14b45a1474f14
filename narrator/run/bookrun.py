"""One book's run, whichever executor carries it out: its output folder held, its plan made and checked, the plan
carried out, and its records written (ledger.py): the manifest as soon as synthesis ends, then the manifest and
report of the whole run. Whatever ends the run (done, failed chunks, a fatal provider error, a budget refusal, a
signal), report.json says so, with its exit code."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..build.outputs import remove_stale_outputs
from ..build.stages import BuildResult, Unfinished
from ..core import errors
from ..core.records import MANIFEST, REPORT, ChunkState
from ..core.workspace import Workspace
from ..synthesis.proofs import ProofOutcome
from ..synthesis.scheduler import SynthesisOutcome
from ..synthesis.script import Script
from . import ledger
from .preflight import check_budget, check_review, fatal_message
from .work import BookExecutor, BookPlan, Executed, plan_book


@dataclass
class RunResult:
    exit_code: int
    output_dir: Path
    outputs: list[Path] = field(default_factory=list)
    counts: Counter[ChunkState] = field(default_factory=Counter)
    message: str = ""


class BookRun:
    """``started``: when the book's preparation began (time.monotonic), so that its timings count it."""

    def __init__(self, script: Script, strict: bool, started: float):
        self.script = script
        self.strict = strict
        self.started = started
        self.timings: dict[str, float] = {"prepare": time.monotonic() - started}
        self.plan: BookPlan | None = None
        self.outcome = SynthesisOutcome()  # the takes' outcome, once synthesis has ended
        self.holds_folder = False
        self.ended = False  # its records are written: nothing that happens after is this book's

    @property
    def out_dir(self) -> Path:
        return self.script.job.output.dir

    async def carry_out(self, executor: BookExecutor) -> RunResult:
        job = self.script.job
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, REPORT):  # found now, not after an hour of synthesis
            if (self.out_dir / name).exists() and not (self.out_dir / name).is_file():
                raise errors.JobError([f"{job.path}: output.dir: {self.out_dir / name} is not a file"])
        with Workspace(self.out_dir, job.path):
            self.holds_folder = True  # from here, the report is ours to write, whatever happens
            plan = self.plan = await asyncio.to_thread(plan_book, self.script)
            if job.budget_usd is not None:
                check_budget(self.script)
            if self.strict:
                check_review(self.script)
            return self.record(plan, await executor.execute(plan, self))

    def synthesized(self, outcome: SynthesisOutcome) -> None:
        """The record of what is done survives whatever follows; the last build's record with it."""
        assert self.plan is not None
        self.outcome = outcome
        self.timings["synthesis"] = outcome.seconds
        statuses = ledger.chunk_statuses(self.script, set(self.plan.reused), outcome)
        ledger.manifest(self.script, statuses, None, self.plan.previous).write(self.out_dir / MANIFEST)

    def record(self, plan: BookPlan, executed: Executed) -> RunResult:
        script, previous = self.script, plan.previous
        statuses = ledger.chunk_statuses(script, set(plan.reused), executed.outcome)
        built, finished = (
            (None, executed.built.finished) if isinstance(executed.built, Unfinished) else (executed.built, {})
        )
        counts = Counter(s.status for s in statuses.values())
        if built is not None:
            remove_stale_outputs(self.out_dir, previous, {p.resolve() for p in built.outputs})
        proof = executed.proof
        ledger.manifest(script, statuses, built, previous, finished, proof).write(self.out_dir / MANIFEST)
        exit_code, message = self.verdict(executed.outcome, counts, statuses, built)
        if exit_code == errors.EXIT_OK and self.strict and proof is not None and proof.failed():
            exit_code, message = (
                errors.EXIT_STRICT,
                (
                    f"{len(proof.failed())} take(s) still say something else than their text after their retakes "
                    + (f"({len(proof.over_budget)} not retaken: budget_usd) " if proof.over_budget else "")
                    + "(see report.json proof; narrator review lists them first)"
                ),
            )
        self.write_report(exit_code, message, executed.outcome, counts, built, len(executed.prepared), proof)
        self.ended = True
        return RunResult(exit_code, self.out_dir, built.outputs if built else [], counts, message)

    def verdict(
        self,
        outcome: SynthesisOutcome,
        counts: Counter[ChunkState],
        statuses: dict[str, ledger.ChunkStatus],
        built: BuildResult | None,
    ) -> tuple[int, str]:
        if outcome.fatal is not None:
            return errors.EXIT_FATAL_PROVIDER, fatal_message(outcome.fatal, self.script, counts)
        if counts["failed"] or counts["pending"]:
            first = next((s.error for s in statuses.values() if s.error), "not started")
            return errors.EXIT_CHUNKS_FAILED, (
                f"{counts['failed']} chunk(s) failed: {first}; no whole-book file written, rerun to retry only those"
            )
        failing = [q.file for q in (built.qa if built else []) if not q.passed]
        if self.strict and failing:
            return (
                errors.EXIT_STRICT,
                f"{len(failing)} file(s) fail the {self.script.job.output.mastering} preset: "
                + (f"{', '.join(failing[:3])}{' ...' if len(failing) > 3 else ''} (see report.json qa)"),
            )
        return errors.EXIT_OK, "done"

    def write_report(
        self,
        exit_code: int,
        message: str,
        outcome: SynthesisOutcome,
        counts: Counter[ChunkState],
        built: BuildResult | None,
        preparations: int = 1,
        proof: ProofOutcome | None = None,
    ) -> None:
        self.timings["total"] = time.monotonic() - self.started
        if built is not None and built.first_chapter_at is not None:  # a listener may start here
            self.timings["first_chapter"] = built.first_chapter_at - self.started
        self.timings["cpu"] = ledger.cpu_seconds()  # narrator and its ffmpeg processes: stage_seconds count waits too
        previous = self.plan.previous if self.plan else None
        on_disk = None
        if built is None and previous is not None:  # what is on disk is the last build, not this job's
            on_disk = [o for o in previous.outputs if (self.out_dir / o).is_file()]
        ending = ledger.Ending(exit_code, message, on_disk, preparations)
        report = ledger.report(self.script, outcome, counts, self.timings, built, ending, proof)
        report.write(self.out_dir / REPORT)

    def interrupted(self, exc: BaseException) -> None:
        """The run ended by an exception: a budget refusal, a tool's failure, a signal. Its report still tells
        CI what happened and what is done (takes in the cache stay done)."""
        if not self.holds_folder:
            return  # the folder is another run's or another job's: not ours to write in
        if isinstance(exc, errors.NarratorError):
            exit_code, message = exc.exit_code, str(exc).splitlines()[0]
        elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            signum = getattr(exc, "signum", signal.SIGINT)
            exit_code, message = 128 + signum, f"stopped by {signal.Signals(signum).name}; rerun to resume"
        else:
            return
        stored = self.script.cached_keys()
        before = stored if self.plan is None else self.plan.cached  # stopped before synthesis
        counts: Counter[ChunkState] = Counter()
        for key in (self.script.keys[chunk.id] for chunk in self.script.chunks):
            counts["pending" if key not in stored else "cached" if key in before else "synthesized"] += 1
        with contextlib.suppress(OSError):
            self.write_report(exit_code, message, self.outcome, counts, None)
