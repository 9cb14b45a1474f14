"""The whole run, stage after stage: job -> script (sources, prepared text, chunks; script.py) -> takes (cache,
provider; scheduler.py) -> output files (outputs.py), manifest and report (records.py). Callable from Python;
the CLI is a thin layer over ``run_job`` here and ``make_plan`` in planning.py."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..build.outputs import build_outputs, remove_stale_outputs
from ..build.stages import BuildResult, PriorWork, Unfinished
from ..core import errors
from ..core.records import (
    MANIFEST,
    REPORT,
    ChunkState,
    Manifest,
    read_manifest,
)
from ..core.workspace import Workspace
from ..job.spec import Job
from ..synthesis.gate import ChapterGate
from ..synthesis.scheduler import Limiter, Pace, SynthesisOutcome, TakeResult, Work, synthesize_all
from ..synthesis.script import Sample, Script, prepare_script
from . import ledger
from .preflight import check_budget, check_key, check_review, fatal_message


@dataclass
class RunResult:
    exit_code: int
    output_dir: Path
    outputs: list[Path] = field(default_factory=list)
    counts: Counter[ChunkState] = field(default_factory=Counter)
    message: str = ""


def run_job(job: Job, *, progress: bool | None = None, strict: bool = False, sample: Sample | None = None) -> RunResult:
    """``strict``: a build whose files fail the mastering preset's QA ends with exit 5, not 0. ``sample``: a quick
    listen to part of the book, built in ``<output.dir>/sample/``."""
    run = _Run(job, strict, sample)
    try:  # outside asyncio.run: a signal's exception may leave from the event loop rather than the coroutine
        return asyncio.run(run.go(progress))
    except BaseException as exc:
        run.interrupted(exc)
        raise


async def run_job_async(
    job: Job,
    *,
    progress: bool | None = None,
    strict: bool = False,
    sample: Sample | None = None,
    script: Script | None = None,
    pace: Pace | None = None,
    prior: PriorWork | None = None,
) -> RunResult:
    """Do everything the job asks that is not already done. Whatever ends the run (done, failed chunks, a fatal
    provider error, a budget refusal, a signal), report.json says so, with its exit code. ``script``: the job
    already prepared; ``pace``: the limiter and request slots shared with other runs (catalogue.py);
    ``prior``: what this run's other tasks did (rayrun.py): takes requested, chapter files made."""
    run = _Run(job, strict, sample, pace, script, prior)
    try:
        return await run.go(progress)
    except BaseException as exc:
        run.interrupted(exc)
        raise


class _Run:
    def __init__(
        self,
        job: Job,
        strict: bool = False,
        sample: Sample | None = None,
        pace: Pace | None = None,
        script: Script | None = None,
        prior: PriorWork | None = None,
    ):
        self.job = sample.job(job) if sample else job
        self.sample = sample
        self.strict = strict
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.pace = pace or Pace(Limiter(self.job.requests_per_minute, self.job.tokens_per_minute))
        self.script = script  # prepared by the caller (a catalogue, a Ray task), or by go()
        self.outcome = SynthesisOutcome()
        self.previous: Manifest | None = None
        self.prior = prior or PriorWork(SynthesisOutcome())  # by other tasks of this run (rayrun.py), or nothing
        self.holds_folder = False
        self.cached_at_start: set[str] | None = None  # stored when synthesis began; a take stored since is made

    @property
    def out_dir(self) -> Path:
        return self.job.output.dir

    async def go(self, progress: bool | None) -> RunResult:
        if self.script is None:
            self.script = await asyncio.to_thread(prepare_script, self.job, self.sample)
        script = self.script
        check_key(script)
        self.timings["prepare"] = time.monotonic() - self.started
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, REPORT):  # found now, not after an hour of synthesis
            if (self.out_dir / name).exists() and not (self.out_dir / name).is_file():
                raise errors.JobError([f"{self.job.path}: output.dir: {self.out_dir / name} is not a file"])
        with Workspace(self.out_dir, self.job.path):
            self.holds_folder = True  # from here, the report is ours to write, whatever happens
            return await self.run(script, progress)

    async def run(self, script: Script, progress: bool | None) -> RunResult:
        job = self.job
        self.previous = read_manifest(self.out_dir / MANIFEST)
        await asyncio.to_thread(script.cache.ready, script.keys.values())  # a cache on object storage: checked
        cached = self.cached_at_start = script.cached_keys()
        made = self.prior.synthesized()  # by this run's other tasks (rayrun.py): not reused, but made
        reused = {c.id for c in script.chunks if script.keys[c.id] in cached - made}
        if job.budget_usd is not None:
            check_budget(script)
        if self.strict:
            check_review(script)
        # the back end starts now, and builds each chapter as soon as its takes are stored
        gate = ChapterGate(script, cached)
        with _FilesBar(progress) as bar:
            built_by = (script, self.previous, self.timings, bar.update, gate, self.prior.prebuilt)
            building = asyncio.create_task(asyncio.to_thread(build_outputs, *built_by))
            try:
                self.outcome = await synthesize_takes(script, cached, len(reused), self.pace, progress, gate)
            except BaseException:
                building.cancel()  # its thread ends by itself: the gate closes below
                raise
            finally:
                gate.close()  # no more takes come: a chapter still without its takes will not be built
                self.prior.into_outcome(self.outcome)
                self.timings["synthesis"] = self.outcome.seconds
                statuses = ledger.chunk_statuses(script, reused, self.outcome)
                # the record of what is done survives whatever follows; the last build's record with it
                ledger.manifest(script, statuses, None, self.previous).write(self.out_dir / MANIFEST)
            ended = await building
            built, finished = (None, ended.finished) if isinstance(ended, Unfinished) else (ended, {})
        counts = Counter(s.status for s in statuses.values())
        if built is not None:
            self.prior.into_build(built)
            remove_stale_outputs(self.out_dir, self.previous, {p.resolve() for p in built.outputs})
        ledger.manifest(script, statuses, built, self.previous, finished).write(self.out_dir / MANIFEST)
        exit_code, message = self.verdict(counts, statuses, built)
        self.write_report(exit_code, message, counts, built)
        return RunResult(exit_code, self.out_dir, built.outputs if built else [], counts, message)

    def verdict(
        self, counts: Counter[ChunkState], statuses: dict[str, ledger.ChunkStatus], built: BuildResult | None
    ) -> tuple[int, str]:
        if self.outcome.fatal is not None:
            assert self.script is not None
            return errors.EXIT_FATAL_PROVIDER, fatal_message(self.outcome.fatal, self.script, counts)
        if counts["failed"] or counts["pending"]:
            first = next((s.error for s in statuses.values() if s.error), "not started")
            return errors.EXIT_CHUNKS_FAILED, (
                f"{counts['failed']} chunk(s) failed: {first}; no whole-book file written, rerun to retry only those"
            )
        failing = [q.file for q in (built.qa if built else []) if not q.passed]
        if self.strict and failing:
            return errors.EXIT_STRICT, f"{len(failing)} file(s) fail the {self.job.output.mastering} preset: " + (
                f"{', '.join(failing[:3])}{' ...' if len(failing) > 3 else ''} (see report.json qa)"
            )
        return errors.EXIT_OK, "done"

    def write_report(
        self, exit_code: int, message: str, counts: Counter[ChunkState], built: BuildResult | None
    ) -> None:
        assert self.script is not None
        self.timings["total"] = time.monotonic() - self.started
        self.timings["cpu"] = ledger.cpu_seconds()  # narrator and its ffmpeg processes: stage_seconds count waits too
        preparations = len({self.script.prepared} | self.prior.prepared)
        on_disk = None
        if built is None and self.previous is not None:  # what is on disk is the last build, not this job's
            on_disk = [o for o in self.previous.outputs if (self.out_dir / o).is_file()]
        ending = ledger.Ending(exit_code, message, on_disk, preparations)
        ledger.report(self.script, self.outcome, counts, self.timings, built, ending).write(self.out_dir / REPORT)

    def interrupted(self, exc: BaseException) -> None:
        """The run ended by an exception: a budget refusal, a tool's failure, a signal. Its report still tells
        CI what happened and what is done (takes in the cache stay done)."""
        if self.script is None or not self.holds_folder:
            return  # nothing prepared, or the folder is another run's or another job's: not ours to write in
        if isinstance(exc, errors.NarratorError):
            exit_code, message = exc.exit_code, str(exc).splitlines()[0]
        elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            signum = getattr(exc, "signum", signal.SIGINT)
            exit_code, message = 128 + signum, f"stopped by {signal.Signals(signum).name}; rerun to resume"
        else:
            return
        stored = self.script.cached_keys()
        before = stored if self.cached_at_start is None else self.cached_at_start  # stopped before synthesis
        counts: Counter[ChunkState] = Counter()
        for key in (self.script.keys[chunk.id] for chunk in self.script.chunks):
            counts["pending" if key not in stored else "cached" if key in before else "synthesized"] += 1
        with contextlib.suppress(OSError):
            self.write_report(exit_code, message, counts, None)


async def synthesize_takes(
    script: Script, cached: set[str], reused: int, pace: Pace, progress: bool | None, gate: ChapterGate
) -> SynthesisOutcome:
    """Every missing take, once per cache key, in reading order, with a progress bar on a terminal."""
    work: dict[str, Work] = {}
    for take in script.takes:
        key = script.key_of(take)
        if key not in cached and key not in work:
            work[key] = Work(key, script.text_of(take), take.tokens, script.provider_of(take))
    chunks_per_key = Counter(script.keys.values())
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=len(script.chunks), initial=reused, unit="chunk", desc="narrating", disable=not show, dynamic_ncols=True
    )
    new_audio = 0.0

    def on_take(key: str, result: TakeResult) -> None:
        nonlocal new_audio
        if result.status in ("synthesized", "cached"):  # cached: made meanwhile by another book
            gate.stored(key)
        if result.status == "synthesized":
            new_audio += result.duration
            bar.set_postfix_str(f"{new_audio / 60:.1f} min of new audio", refresh=False)
        if result.status != "skipped":
            bar.update(chunks_per_key[key])

    job = script.job
    try:
        return await synthesize_all(
            list(work.values()),
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
