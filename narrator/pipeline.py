"""The whole run, stage after stage: sources -> document -> prepared text -> chunks -> takes (cache,
provider) -> chapter audio -> output files, manifest and report. Callable from Python; the CLI is a
thin layer over ``plan_job`` and ``run_job``."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import errors
from .assemble import ChapterAudio, assemble_chapter
from .audio import Audio
from .cache import TakeCache, take_key
from .chunker import Chunk, Limits, chunk_chapters
from .document import Chapter, Document
from .mastering import PRESETS, Preset, check_file, master_chapter
from .prepare import Preparer
from .providers import Provider, create_provider
from .scheduler import Limiter, SynthesisOutcome, TakeResult, Work, synthesize_all
from .sources import load_document
from .spec import Job
from .subtitles import chapter_cues, write_subtitles
from .tokens import count_tokens
from .writers import safe_filename, write_cover, write_json, write_m4b, write_mp3

log = logging.getLogger("narrator")
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
    manifest = _manifest(prepared, statuses, chapters_audio=[], outputs=[])
    write_json(out_dir / MANIFEST, manifest)  # the record of what is done survives whatever follows

    outputs: list[Path] = []
    chapters_audio: list[ChapterAudio] = []
    qa: list[dict[str, Any]] = []
    complete = counts["failed"] == 0 and counts["pending"] == 0
    if complete:
        chapters_audio, outputs = await asyncio.to_thread(_build_outputs, prepared, timings, qa)
        _remove_stale_outputs(out_dir, set(outputs))

    manifest = _manifest(prepared, statuses, chapters_audio, outputs)
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
    report = _report(prepared, outcome, counts, timings, outputs, chapters_audio, limiter, exit_code, message)
    if job.output.mastering != "none":
        report["qa"] = {"preset": job.output.mastering, "pass": bool(qa) and all(f["pass"] for f in qa), "files": qa}
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


def _book_rate(prepared: Prepared) -> int:
    first = prepared.cache.get(prepared.keys[prepared.chunks[0].id])
    if first is None:
        raise errors.ToolError("the first take vanished from the cache during the run")
    return first.rate


def _build_outputs(
    prepared: Prepared, timings: dict[str, float], qa: list[dict[str, Any]]
) -> tuple[list[ChapterAudio], list[Path]]:
    job, doc = prepared.job, prepared.document
    out_dir = job.output.dir
    work_dir = out_dir / ".work"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    t0 = time.monotonic()
    rate = _book_rate(prepared)

    def load_take(chunk: Chunk) -> Audio:
        audio = prepared.cache.get(prepared.keys[chunk.id])
        if audio is None:
            raise errors.ToolError(f"take for chunk {chunk.id} vanished from the cache during the run")
        return audio

    by_chapter: dict[int, list[Chunk]] = {}
    for chunk in prepared.chunks:
        by_chapter.setdefault(chunk.chapter, []).append(chunk)
    chapters_audio = [
        assemble_chapter(
            i, prepared.chapters[i].title, by_chapter.get(i, []), load_take, job.pauses, rate,
            work_dir / f"chapter-{i + 1:04d}.wav", lambda c: prepared.provider.estimate_seconds(c.spoken),
        )
        for i in range(len(prepared.chapters))
    ]  # fmt: skip
    timings["assembly"] = time.monotonic() - t0

    preset = PRESETS[job.output.mastering]
    if preset is not None:
        t0 = time.monotonic()
        chapters_audio = _master(chapters_audio, preset)
        timings["mastering"] = time.monotonic() - t0

    t0 = time.monotonic()
    cover_file = write_cover(doc.cover, work_dir)
    total = len(chapters_audio)
    width = max(2, len(str(total)))
    # "chapters/01 Title": the MP3 and the subtitles of a chapter share it (titles may hold dots: no with_suffix)
    stems = [out_dir / "chapters" / f"{n:0{width}d} {safe_filename(c.title)}" for n, c in enumerate(chapters_audio, 1)]
    mp3_bitrate = (preset.mp3_bitrate if preset else None) or job.output.bitrate
    tasks: list[tuple[Path, Callable[[], None]]] = []
    if "mp3" in job.output.formats:
        for n, (chapter, stem) in enumerate(zip(chapters_audio, stems, strict=True), start=1):
            dest = stem.with_name(f"{stem.name}.mp3")
            encode = partial(write_mp3, chapter, dest, album=doc.title, artist=doc.author, track=n, total=total,
                             cover_file=cover_file, bitrate=mp3_bitrate)  # fmt: skip
            tasks.append((dest, encode))
    if "m4b" in job.output.formats:
        dest = out_dir / f"{safe_filename(doc.title)}.m4b"
        encode = partial(write_m4b, chapters_audio, dest, title=doc.title, author=doc.author, narrator=job.narrator,
                         year=job.year, description=job.description, cover_file=cover_file,
                         bitrate=job.output.bitrate, work_dir=work_dir)  # fmt: skip
        tasks.append((dest, encode))
    subtitle_files = _write_subtitle_files(prepared, chapters_audio, by_chapter, stems)
    # the M4B, the longest encode, goes first so both cores stay busy to the end
    tasks.sort(key=lambda t: t[0].suffix != ".m4b")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for future in [pool.submit(fn) for _, fn in tasks]:
            future.result()
    timings["encoding"] = time.monotonic() - t0
    shutil.rmtree(work_dir, ignore_errors=True)
    if preset is not None:
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            qa[:] = list(pool.map(lambda task: check_file(task[0], preset), tasks))
        timings["qa"] = time.monotonic() - t0
    return chapters_audio, [dest for dest, _ in tasks] + subtitle_files


def _master(chapters: list[ChapterAudio], preset: Preset) -> list[ChapterAudio]:
    """Each chapter to the preset's target, in parallel; durations unchanged (resampled at most)."""

    def one(chapter: ChapterAudio) -> ChapterAudio:
        mastered = chapter.wav.with_name(f"{chapter.wav.stem}-mastered.wav")
        master_chapter(chapter.wav, mastered, preset)
        chapter.wav.unlink()
        rate = preset.sample_rate or chapter.rate
        return replace(chapter, wav=mastered, rate=rate, samples=round(chapter.samples * rate / chapter.rate))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, chapters))


def _write_subtitle_files(
    prepared: Prepared, chapters_audio: list[ChapterAudio], by_chapter: dict[int, list[Chunk]], stems: list[Path]
) -> list[Path]:
    """Per chapter beside its MP3, and for the whole book on the M4B's timeline."""
    formats = [f for f in ("srt", "vtt") if f in prepared.job.output.formats]
    if not formats:
        return []
    out_dir = prepared.job.output.dir
    written: list[Path] = []
    book_cues = []
    offset = 0.0
    for chapter, stem in zip(chapters_audio, stems, strict=True):
        chunks = by_chapter.get(chapter.index, [])
        written += write_subtitles(chapter_cues(chapter, chunks), stem, formats)
        book_cues += chapter_cues(chapter, chunks, offset)
        offset += chapter.duration
    written += write_subtitles(book_cues, out_dir / safe_filename(prepared.document.title), formats)
    return written


def _remove_stale_outputs(out_dir: Path, current: set[Path]) -> None:
    """Chapter files from an earlier run whose chapter was renamed or removed."""
    chapters_dir = out_dir / "chapters"
    if chapters_dir.is_dir():
        for path in chapters_dir.iterdir():
            if path.suffix in (".mp3", ".srt", ".vtt") and path not in current:
                path.unlink()


def _manifest(
    prepared: Prepared,
    statuses: dict[str, dict[str, Any]],
    chapters_audio: list[ChapterAudio],
    outputs: list[Path],
) -> dict[str, Any]:
    """Deterministic (no timestamps): the same job and cache give the same manifest."""
    out_dir = prepared.job.output.dir
    placements = {p.chunk_id: p for c in chapters_audio for p in c.placements}
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
        }
        if (placed := placements.get(chunk.id)) is not None:
            entry["offset"] = round(placed.offset, 4)
            entry["duration"] = round(placed.duration, 4)
            entry["flags"] = list(placed.flags)
        chunks.append(entry)
    chapters = []
    start = 0.0
    for i, chapter in enumerate(prepared.chapters):
        item: dict[str, Any] = {"number": i + 1, "title": chapter.title}
        if chapters_audio:
            audio = chapters_audio[i]
            item.update(start=round(start, 4), duration=round(audio.duration, 4))
            start += audio.duration
        chapters.append(item)
    doc = prepared.document
    return {
        "title": doc.title,
        "author": doc.author,
        "provider": prepared.provider.fingerprint(),
        "limits": {"max_chars": prepared.limits.max_chars, "max_tokens": prepared.limits.max_tokens},
        "pauses": prepared.job.pauses.__dict__,
        "chapters": chapters,
        "outputs": [os.path.relpath(p, out_dir) for p in outputs],
        "chunks": chunks,
    }


def _report(
    prepared: Prepared,
    outcome: SynthesisOutcome,
    counts: Counter[str],
    timings: dict[str, float],
    outputs: list[Path],
    chapters_audio: list[ChapterAudio],
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
    flagged = {p.chunk_id: list(p.flags) for c in chapters_audio for p in c.placements if p.flags}
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
        "outputs": [os.path.relpath(p, out_dir) for p in outputs],
    }
