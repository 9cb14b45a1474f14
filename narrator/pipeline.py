"""The whole run, stage after stage: job -> script (sources, prepared text, chunks; script.py) -> takes (cache,
provider; scheduler.py) -> output files (outputs.py), manifest and report (records.py). Callable from Python;
the CLI is a thin layer over ``run_job`` here and ``make_plan`` in planning.py."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from . import errors
from .build import BuildResult
from .costs import chunk_cost, price_for
from .outputs import build_outputs, remove_stale_outputs
from .planning import make_plan
from .records import ChapterRow, ChunkCounts, Costs, Manifest, ManifestChunk, QaSection, Report, read_manifest
from .scheduler import Limiter, SynthesisOutcome, TakeResult, Work, synthesize_all
from .script import Script, prepare_script
from .spec import Job

MANIFEST = "manifest.json"
REPORT = "report.json"


@dataclass
class RunResult:
    exit_code: int
    output_dir: Path
    outputs: list[Path] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    message: str = ""


@dataclass
class _ChunkStatus:
    status: str  # cached | synthesized | failed | pending
    attempts: int = 0
    error: str | None = None


def run_job(job: Job, *, progress: bool | None = None) -> RunResult:
    return asyncio.run(run_job_async(job, progress=progress))


async def run_job_async(job: Job, *, progress: bool | None = None) -> RunResult:
    timings: dict[str, float] = {}
    started = time.monotonic()
    script = await asyncio.to_thread(prepare_script, job)
    timings["prepare"] = time.monotonic() - started
    out_dir = job.output.dir
    out_dir.mkdir(parents=True, exist_ok=True)
    script.cache.sweep()
    cached = script.cached_keys()
    reused = {c.id for c in script.chunks if script.keys[c.id] in cached}
    if job.budget_usd is not None:
        _check_budget(script)
    limiter = Limiter(job.requests_per_minute, job.tokens_per_minute)
    outcome = await _synthesize(script, cached, len(reused), limiter, progress)
    timings["synthesis"] = outcome.seconds

    statuses = _chunk_statuses(script, reused, outcome)
    counts = Counter(s.status for s in statuses.values())
    previous = read_manifest(out_dir / MANIFEST)
    _manifest(script, statuses, None).write(out_dir / MANIFEST)  # the record of what is done survives what follows

    built: BuildResult | None = None
    complete = counts["failed"] == 0 and counts["pending"] == 0
    if complete:
        built = await asyncio.to_thread(build_outputs, script, previous, timings)
        remove_stale_outputs(out_dir, previous, {p.resolve() for p in built.outputs})
    _manifest(script, statuses, built).write(out_dir / MANIFEST)
    timings["total"] = time.monotonic() - started

    if outcome.fatal is not None:
        exit_code, message = errors.EXIT_FATAL_PROVIDER, fatal_message(outcome.fatal, script, counts)
    elif not complete:
        exit_code = errors.EXIT_CHUNKS_FAILED
        message = f"{counts['failed']} chunk(s) failed; no audiobook written. Rerun to retry only those."
    else:
        exit_code, message = errors.EXIT_OK, "done"
    report = _report(script, outcome, counts, timings, built, limiter)
    report.exit_code, report.message = exit_code, message
    report.write(out_dir / REPORT)
    return RunResult(exit_code, out_dir, built.outputs if built else [], counts, message)


async def _synthesize(
    script: Script, cached: set[str], reused: int, limiter: Limiter, progress: bool | None
) -> SynthesisOutcome:
    """Every missing take, once per cache key, in reading order, with a progress bar on a terminal."""
    work: dict[str, Work] = {}
    for chunk in script.chunks:
        key = script.keys[chunk.id]
        if key not in cached and key not in work:
            work[key] = Work(key, chunk.spoken, chunk.tokens)
    chunks_per_key = Counter(script.keys.values())
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(script.chunks), initial=reused, unit="chunk", desc="narrating", disable=not show,
               dynamic_ncols=True)  # fmt: skip
    new_audio = 0.0

    def on_take(key: str, result: TakeResult) -> None:
        nonlocal new_audio
        if result.status == "synthesized":
            new_audio += result.duration
            bar.set_postfix_str(f"{new_audio / 60:.1f} min of new audio", refresh=False)
        if result.status != "skipped":
            bar.update(chunks_per_key[key])

    job = script.job
    try:
        return await synthesize_all(list(work.values()), script.provider, script.cache, concurrency=job.concurrency,
                                    limiter=limiter, retry=job.retry, on_take=on_take)  # fmt: skip
    finally:
        bar.close()


def _check_budget(script: Script) -> None:
    job = script.job
    to_finish = make_plan(job, script).total.cost_to_finish_usd
    if job.budget_usd is not None and to_finish > job.budget_usd:
        raise errors.JobError(
            [f"{job.path}: budget_usd: finishing would cost about ${to_finish:.2f}, over the budget of "
             f"${job.budget_usd:.2f}; nothing was sent (see `narrator plan`)"]
        )  # fmt: skip


def fatal_message(exc: errors.FatalProviderError, script: Script, counts: Counter[str]) -> str:
    """One line: what happened, and what to do about it."""
    kept = counts["cached"] + counts["synthesized"]
    rerun = f"then rerun: the {kept} finished chunk(s) are kept and will not be requested again"
    if isinstance(exc, errors.AuthError):
        key = script.provider.profile.key_env
        return f"the provider refused the API key ({exc}); check ${key} and voice.base_url, {rerun}"
    if isinstance(exc, errors.ModelNotFound):
        return f"the provider does not offer this model ({exc}); fix voice.model, {rerun}"
    if isinstance(exc, errors.QuotaExceeded):
        return f"the account is out of quota or credit ({exc}); add credit or raise the limit, {rerun}"
    return f"stopped by the provider ({exc}); {rerun}"


def _chunk_statuses(script: Script, reused: set[str], outcome: SynthesisOutcome) -> dict[str, _ChunkStatus]:
    statuses: dict[str, _ChunkStatus] = {}
    names = {"synthesized": "synthesized", "failed": "failed", "skipped": "pending"}
    for chunk in script.chunks:
        if chunk.id in reused:
            statuses[chunk.id] = _ChunkStatus("cached")
            continue
        result = outcome.results.get(script.keys[chunk.id], TakeResult("skipped"))
        statuses[chunk.id] = _ChunkStatus(names[result.status], result.attempts, result.error)
    return statuses


def _manifest(script: Script, statuses: dict[str, _ChunkStatus], built: BuildResult | None) -> Manifest:
    out_dir = script.job.output.dir
    chunks = []
    for chunk in script.chunks:
        key = script.keys[chunk.id]
        placed = built.placements.get(chunk.id) if built else None
        status = statuses[chunk.id]
        chunks.append(ManifestChunk(
            id=chunk.id, chapter=chunk.chapter + 1, block=chunk.block, piece=chunk.piece, kind=chunk.kind,
            text=chunk.spoken, tokens=chunk.tokens, characters=chunk.chars, cache_key=key,
            audio=os.path.relpath(script.cache.path(key), out_dir), status=status.status, attempts=status.attempts,
            error=status.error, **(placed.model_dump() if placed else {}),
        ))  # fmt: skip
    chapters = (
        built.chapters if built else [ChapterRow(number=i + 1, title=c.title) for i, c in enumerate(script.chapters)]
    )
    return Manifest(
        title=script.document.title,
        author=script.document.author,
        provider=script.provider.fingerprint(),
        limits={"max_chars": script.limits.max_chars, "max_tokens": script.limits.max_tokens},
        pauses=script.job.pauses.model_dump(),
        chapters=chapters,
        outputs=[os.path.relpath(p, out_dir) for p in built.outputs] if built else [],
        fingerprints=built.fingerprints if built else {},
        qa=built.qa if built else [],
        chunks=chunks,
    )


def _report(script: Script, outcome: SynthesisOutcome, counts: Counter[str], timings: dict[str, float],
            built: BuildResult | None, limiter: Limiter) -> Report:  # fmt: skip
    job, profile = script.job, script.provider.profile
    price = price_for(job, profile)
    run_cost = book_cost = 0.0
    failed: list[str] = []
    for chunk in script.chunks:
        result = outcome.results.get(script.keys[chunk.id])
        book_cost += chunk_cost(price, chunk, profile.speech_seconds(chunk.spoken))
        if result is not None and result.status == "synthesized":
            run_cost += chunk_cost(price, chunk, result.duration)
        elif result is not None and result.status == "failed":
            failed.append(chunk.id)
    placements = built.placements if built else {}
    qa = None
    if job.output.mastering != "none":
        files = built.qa if built else []
        qa = QaSection(preset=job.output.mastering, passed=bool(files) and all(f.passed for f in files), files=files)
    return Report(
        exit_code=0, message="", provider=script.provider.fingerprint(),
        chunks=ChunkCounts(total=len(script.chunks), synthesized=counts["synthesized"], reused=counts["cached"],
                           failed=counts["failed"], pending=counts["pending"]),
        requests=outcome.requests,
        responses_by_status=dict(sorted(outcome.responses.items())),
        retries=dict(sorted(outcome.retries.items())),
        rate_limited=limiter.slowdowns,
        failed_chunks=failed,
        flagged_chunks={cid: p.flags for cid, p in placements.items() if p.flags},
        estimated_cost_usd=Costs(this_run=round(run_cost, 4), book=round(book_cost, 4)),
        timings_seconds={k: round(v, 3) for k, v in timings.items()},
        stage_seconds={k: round(v, 3) for k, v in (built.stage_seconds if built else {}).items()},
        outputs=[os.path.relpath(p, job.output.dir) for p in built.outputs] if built else [],
        outputs_reused=bool(built and built.reused),
        qa=qa,
    )  # fmt: skip
