"""The whole run, stage after stage: sources -> document -> prepared text -> chunks -> takes (cache,
provider) -> chapter audio -> output files, manifest and report. Callable from Python; the CLI is a
thin layer over ``run_job`` here and ``make_plan`` in planning.py."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import errors
from .cache import TakeCache, take_key
from .chunker import Chunk, Limits, chunk_chapters
from .document import Chapter, Document
from .outputs import BuildResult, build_outputs, remove_stale_outputs
from .prepare import Preparer
from .providers import Provider, create_provider
from .scheduler import Limiter, SynthesisOutcome, TakeResult, Work, synthesize_all
from .sources import load_document
from .spec import Job
from .tokens import count_tokens
from .writers import write_json

MANIFEST = "manifest.json"
REPORT = "report.json"


@dataclass
class Prepared:
    """Everything known before any audio exists: the input of plan and run."""

    job: Job
    document: Document
    chapters: tuple[Chapter, ...]  # prepared text
    chunks: list[Chunk]
    keys: dict[str, str]  # chunk id -> cache key
    provider: Provider
    cache: TakeCache
    limits: Limits

    def cached_keys(self) -> set[str]:
        return {k for k in set(self.keys.values()) if self.cache.has(k)}


@dataclass
class RunResult:
    exit_code: int
    output_dir: Path
    outputs: list[Path] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    message: str = ""


def effective_limits(job: Job, provider: Provider) -> Limits:
    provider_limits = provider.limits()
    max_chars = min(job.chunking.max_chars, provider_limits.max_chars or job.chunking.max_chars)
    max_tokens = min(job.chunking.max_tokens, provider_limits.max_tokens or job.chunking.max_tokens)
    if job.voice.instructions and (provider_limits.count_instructions or job.voice.provider != "local"):
        used = count_tokens(job.voice.instructions)
        if used >= max_tokens - 16:
            raise errors.JobError(
                [f"{job.path}: voice.instructions: {used} tokens leave no room under max_tokens {max_tokens}"]
            )
        max_tokens -= used
    return Limits(max_chars=max_chars, max_tokens=max_tokens)


def prepare_job(job: Job) -> Prepared:
    provider = create_provider(job.voice, concurrency=job.concurrency)
    document = load_document(job.sources, title=job.title, author=job.author, cover_path=job.cover)
    preparer = Preparer(job.lexicon)
    chapters = tuple(preparer.chapter(c) for c in document.chapters)
    limits = effective_limits(job, provider)
    chunks = chunk_chapters(chapters, limits)
    fingerprint = provider.fingerprint()
    keys = {c.id: take_key(fingerprint, c.spoken) for c in chunks}
    return Prepared(job, document, chapters, chunks, keys, provider, TakeCache(job.cache), limits)


def run_job(job: Job, *, progress: bool | None = None) -> RunResult:
    return asyncio.run(run_job_async(job, progress=progress))


async def run_job_async(job: Job, *, progress: bool | None = None) -> RunResult:
    timings: dict[str, float] = {}
    started = time.monotonic()
    prepared = await asyncio.to_thread(prepare_job, job)
    timings["prepare"] = time.monotonic() - started
    out_dir = job.output.dir
    out_dir.mkdir(parents=True, exist_ok=True)

    prepared.cache.sweep()
    cached = prepared.cached_keys()
    reused = {c.id for c in prepared.chunks if prepared.keys[c.id] in cached}
    if job.budget_usd is not None:
        _check_budget(prepared)
    work: list[Work] = []
    seen: set[str] = set()
    for chunk in prepared.chunks:
        key = prepared.keys[chunk.id]
        if key not in cached and key not in seen:
            seen.add(key)
            work.append(Work(key, chunk.spoken, chunk.tokens))

    chunks_per_key = Counter(prepared.keys.values())
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=len(prepared.chunks), initial=len(reused), unit="chunk", desc="narrating",
        disable=not show, dynamic_ncols=True,
    )  # fmt: skip
    new_audio = 0.0

    def on_take(key: str, result: TakeResult) -> None:
        nonlocal new_audio
        if result.status == "synthesized":
            new_audio += result.duration
            bar.set_postfix_str(f"{new_audio / 60:.1f} min of new audio", refresh=False)
        if result.status != "skipped":
            bar.update(chunks_per_key[key])

    limiter = Limiter(job.requests_per_minute, job.tokens_per_minute)
    try:
        outcome = await synthesize_all(
            work, prepared.provider, prepared.cache,
            concurrency=job.concurrency, limiter=limiter, retry=job.retry, on_take=on_take,
        )  # fmt: skip
    finally:
        bar.close()
    timings["synthesis"] = outcome.seconds

    statuses = _chunk_statuses(prepared, reused, outcome)
    counts = Counter(s["status"] for s in statuses.values())
    previous = _read_previous_manifest(out_dir)
    # the record of what is done survives whatever follows
    write_json(out_dir / MANIFEST, _manifest(prepared, statuses, None))

    built: BuildResult | None = None
    complete = counts["failed"] == 0 and counts["pending"] == 0
    if complete:
        built = await asyncio.to_thread(build_outputs, prepared, previous, timings)
        remove_stale_outputs(out_dir, set(built.outputs))
    outputs = built.outputs if built else []

    manifest = _manifest(prepared, statuses, built)
    write_json(out_dir / MANIFEST, manifest)
    timings["total"] = time.monotonic() - started

    if outcome.fatal is not None:
        exit_code = errors.EXIT_FATAL_PROVIDER
        message = fatal_message(outcome.fatal, job, counts)
    elif not complete:
        exit_code = errors.EXIT_CHUNKS_FAILED
        message = f"{counts['failed']} chunk(s) failed; no audiobook written. Rerun to retry only those."
    else:
        exit_code = errors.EXIT_OK
        message = "done"
    report = _report(prepared, outcome, counts, timings, built, limiter, exit_code, message)
    write_json(out_dir / REPORT, report)
    return RunResult(exit_code, out_dir, outputs, counts, message)


def _check_budget(prepared: Prepared) -> None:
    from .planning import make_plan

    job = prepared.job
    to_finish = make_plan(job, prepared)["total"]["cost_to_finish_usd"]
    if job.budget_usd is not None and to_finish > job.budget_usd:
        raise errors.JobError(
            [f"{job.path}: budget_usd: finishing would cost about ${to_finish:.2f}, over the budget of "
             f"${job.budget_usd:.2f}; nothing was sent (see `narrator plan`)"]
        )  # fmt: skip


def fatal_message(exc: errors.FatalProviderError, job: Job, counts: Counter[str]) -> str:
    """One line: what happened, and what to do about it."""
    kept = counts["cached"] + counts["synthesized"]
    rerun = f"then rerun: the {kept} finished chunk(s) are kept and will not be requested again"
    if isinstance(exc, errors.AuthError):
        return f"the provider refused the API key ({exc}); check ${job.voice.api_key_env} and voice.base_url, {rerun}"
    if isinstance(exc, errors.ModelNotFound):
        return f"the provider does not offer this model ({exc}); fix voice.model, {rerun}"
    if isinstance(exc, errors.QuotaExceeded):
        return f"the account is out of quota or credit ({exc}); add credit or raise the limit, {rerun}"
    return f"stopped by the provider ({exc}); {rerun}"


def _chunk_statuses(prepared: Prepared, reused: set[str], outcome: SynthesisOutcome) -> dict[str, dict[str, Any]]:
    statuses: dict[str, dict[str, Any]] = {}
    for chunk in prepared.chunks:
        key = prepared.keys[chunk.id]
        if chunk.id in reused:
            statuses[chunk.id] = {"status": "cached", "attempts": 0}
            continue
        result = outcome.results.get(key, TakeResult("skipped"))
        status = {"synthesized": "synthesized", "failed": "failed", "skipped": "pending"}[result.status]
        statuses[chunk.id] = {"status": status, "attempts": result.attempts}
        if result.error:
            statuses[chunk.id]["error"] = result.error
    return statuses


def _read_previous_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "fingerprints" in data else None


def _manifest(prepared: Prepared, statuses: dict[str, dict[str, Any]], built: BuildResult | None) -> dict[str, Any]:
    """Deterministic (no timestamps): the same job and cache give the same manifest."""
    out_dir = prepared.job.output.dir
    chunks = []
    for chunk in prepared.chunks:
        key = prepared.keys[chunk.id]
        entry: dict[str, Any] = {
            "id": chunk.id,
            "chapter": chunk.chapter + 1,
            "block": chunk.block,
            "piece": chunk.piece,
            "kind": chunk.kind,
            "text": chunk.spoken,
            "tokens": chunk.tokens,
            "characters": chunk.chars,
            "cache_key": key,
            "audio": os.path.relpath(prepared.cache.path(key), out_dir),
            **statuses[chunk.id],
            **(built.placements.get(chunk.id, {}) if built else {}),
        }
        chunks.append(entry)
    chapters = built.chapters if built else [
        {"number": i + 1, "title": c.title} for i, c in enumerate(prepared.chapters)
    ]  # fmt: skip
    doc = prepared.document
    return {
        "title": doc.title,
        "author": doc.author,
        "provider": prepared.provider.fingerprint(),
        "limits": {"max_chars": prepared.limits.max_chars, "max_tokens": prepared.limits.max_tokens},
        "pauses": prepared.job.pauses.__dict__,
        "chapters": chapters,
        "outputs": [os.path.relpath(p, out_dir) for p in built.outputs] if built else [],
        "fingerprints": built.fingerprints if built else {},
        "qa": built.qa if built else [],
        "chunks": chunks,
    }


def _report(
    prepared: Prepared,
    outcome: SynthesisOutcome,
    counts: Counter[str],
    timings: dict[str, float],
    built: BuildResult | None,
    limiter: Limiter,
    exit_code: int,
    message: str,
) -> dict[str, Any]:
    """What the run did, for people and for CI. No key, no headers: nothing secret."""
    from .costs import chunk_cost, price_for

    job = prepared.job
    out_dir = job.output.dir
    price = price_for(job, prepared.provider.fingerprint().get("model"))
    run_cost = book_cost = 0.0
    failed: list[str] = []
    for chunk in prepared.chunks:
        result = outcome.results.get(prepared.keys[chunk.id])
        estimate = prepared.provider.estimate_seconds(chunk.spoken)
        book_cost += chunk_cost(price, chunk, estimate)
        if result is not None and result.status == "synthesized":
            run_cost += chunk_cost(price, chunk, result.duration)
        elif result is not None and result.status == "failed":
            failed.append(chunk.id)
    stats = getattr(prepared.provider, "stats", None)
    flagged = {cid: p["flags"] for cid, p in (built.placements if built else {}).items() if p["flags"]}
    return {
        "exit_code": exit_code,
        "message": message,
        "provider": prepared.provider.fingerprint(),
        "chunks": {
            "total": len(prepared.chunks),
            "synthesized": counts["synthesized"],
            "reused": counts["cached"],
            "failed": counts["failed"],
            "pending": counts["pending"],
        },
        "requests": outcome.requests,
        "responses_by_status": dict(sorted(stats.statuses.items())) if stats else {},
        "retries": dict(sorted(outcome.retries.items())),
        "rate_limited": limiter.slowdowns,
        "failed_chunks": failed,
        "flagged_chunks": flagged,
        "estimated_cost_usd": {"this_run": round(run_cost, 4), "book": round(book_cost, 4)},
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        # assembly, mastering and encoding overlap (timings_seconds.outputs is their wall time); this is the
        # time each kept a core busy, summed over threads
        "stage_seconds": {k: round(v, 3) for k, v in (built.stage_seconds if built else {}).items()},
        "outputs": [os.path.relpath(p, out_dir) for p in built.outputs] if built else [],
        "outputs_reused": bool(built and built.reused),
        **_qa_section(job, built),
    }


def _qa_section(job: Job, built: BuildResult | None) -> dict[str, Any]:
    if job.output.mastering == "none":
        return {}
    files = built.qa if built else []
    return {
        "qa": {"preset": job.output.mastering, "pass": bool(files) and all(f["pass"] for f in files), "files": files}
    }
