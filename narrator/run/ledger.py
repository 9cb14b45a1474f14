"""What a run leaves on record: each chunk's status, ``manifest.json`` (what is done, and the files of the last
build) and ``report.json`` (what this run did, for CI). Written by pipeline.py whatever ends the run."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..build.stages import BuildResult
from ..core.errors import EXIT_OK
from ..core.records import (
    ChapterRow,
    ChunkCounts,
    ChunkState,
    Costs,
    Manifest,
    ManifestChunk,
    ManifestTake,
    Placement,
    ProofSection,
    QaSection,
    Report,
    TakeOutcome,
)
from ..job.review import review_counts, review_state, stale_decisions
from ..synthesis.costs import expected_cost, run_cost
from ..synthesis.proofs import ProofOutcome
from ..synthesis.scheduler import SynthesisOutcome, TakeResult
from ..synthesis.script import Script
from ..text.chunker import Chunk


@dataclass(frozen=True)
class Ending:
    """How a run ended, for its report: the exit code and its one line, the files on disk when this run built
    none (the last build's), and how many preparations of the book's text its stages used."""

    exit_code: int
    message: str
    on_disk: list[str] | None = None
    text_prepared: int = 1


@dataclass
class ChunkStatus:
    status: ChunkState
    attempts: int = 0
    error: str | None = None


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and the processes it has waited for (ffmpeg, piper)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def chunk_statuses(script: Script, reused: set[str], outcome: SynthesisOutcome) -> dict[str, ChunkStatus]:
    statuses: dict[str, ChunkStatus] = {}
    names: dict[TakeOutcome, ChunkState] = {
        "synthesized": "synthesized",
        "failed": "failed",
        "skipped": "pending",
        "cached": "cached",
    }
    for chunk in script.chunks:
        if chunk.id in reused:
            statuses[chunk.id] = ChunkStatus("cached")
            continue
        result = outcome.results.get(script.keys[chunk.id], TakeResult("skipped"))
        statuses[chunk.id] = ChunkStatus(names[result.status], result.attempts, result.error)
    return statuses


def manifest(
    script: Script,
    statuses: dict[str, ChunkStatus],
    built: BuildResult | None,
    previous: Manifest | None,
    finished: dict[str, str] | None = None,
    proof: ProofOutcome | None = None,
) -> Manifest:
    """This run's chunks; the files, fingerprints and placements of this build, or, until there is one, of the
    last with the chapter files this run ``finished`` (a failed run must not make the next one encode again what
    is already on disk)."""
    out_dir = script.job.output.dir
    last = previous if built is None else None
    carried = {
        c.id: Placement(offset=c.offset, duration=c.duration or 0.0, flags=c.flags or [])
        for c in (last.chunks if last else [])
        if c.offset is not None
    }
    takes, hashes = _manifest_takes(script, statuses, proof)
    chunks = [
        _manifest_chunk(script, chunk, statuses[chunk.id], hashes, built.placements if built else carried)
        for chunk in script.chunks
    ]
    chapters = (
        built.chapters if built else [ChapterRow(number=i + 1, title=c.title) for i, c in enumerate(script.chapters)]
    )
    kept = {k: v for k, v in (last.fingerprints if last else {}).items() if (out_dir / k).is_file()}
    kept.update(finished or {})
    return Manifest(
        title=script.document.title,
        author=script.document.author,
        provider=script.provider.fingerprint(),
        limits=_limits(script),
        pauses=script.job.pauses.model_dump(),
        chapters=chapters,
        outputs=[os.path.relpath(p, out_dir) for p in built.outputs] if built else sorted(kept),
        fingerprints=built.fingerprints if built else kept,
        qa=built.qa if built else [q for q in last.qa if q.file in {Path(k).name for k in kept}] if last else [],
        chunks=chunks,
        takes=takes,
    )


def _manifest_takes(
    script: Script, statuses: dict[str, ChunkStatus], proof: ProofOutcome | None
) -> tuple[list[ManifestTake], dict[str, str | None]]:
    """The manifest's takes, and each take's audio hash (read once, for the take and its chunks)."""
    takes, hashes = [], {}
    stale = stale_decisions(script.review, script.takes)
    for take in script.takes:
        key = script.key_of(take)
        done = statuses[take.chunks[0].id].status in ("cached", "synthesized")
        hashes[take.id] = script.cache.audio_hash(key) if done else None
        state, overridden = review_state(script.review, take, stale)
        takes.append(
            ManifestTake(
                id=take.id,
                chapter=take.chapter + 1,
                chunks=[c.id for c in take.chunks],
                text=script.text_of(take),
                cache_key=key,
                audio_hash=hashes[take.id],
                review=state,
                overridden=overridden or None,
                proof=proof.takes[key].row(proof.model) if proof and key in proof.takes else None,
            )
        )
    return takes, hashes


def _manifest_chunk(
    script: Script, chunk: Chunk, status: ChunkStatus, hashes: dict[str, str | None], placements: dict[str, Placement]
) -> ManifestChunk:
    key, take = script.keys[chunk.id], script.take_of[chunk.id]
    placed = placements.get(chunk.id)
    return ManifestChunk(
        id=chunk.id,
        chapter=chunk.chapter + 1,
        block=chunk.block,
        piece=chunk.piece,
        kind=chunk.kind,
        text=chunk.spoken,
        tokens=chunk.tokens,
        characters=chunk.chars,
        cache_key=key,
        audio=os.path.relpath(script.cache.path(key), script.job.output.dir),
        status=status.status,
        attempts=status.attempts,
        audio_hash=hashes[take.id],
        error=status.error,
        take=take.id,
        speaker=chunk.speaker if script.job.cast is not None else None,
        **(placed.model_dump() if placed else {}),
    )


def _limits(script: Script) -> dict[str, int]:
    return {"max_chars": script.limits.max_chars, "max_tokens": script.limits.max_tokens}


def report(
    script: Script,
    outcome: SynthesisOutcome,
    counts: Counter[ChunkState],
    timings: dict[str, float],
    built: BuildResult | None,
    ending: Ending,
    proof: ProofOutcome | None = None,
) -> Report:
    job = script.job
    run_cost, book_cost, failed = _costs(script, outcome)
    if proof is not None:
        run_cost += proof.cost_usd + proof.retake_cost_usd
    built_outputs = [os.path.relpath(p, job.output.dir) for p in built.outputs] if built else []
    qa = None
    if job.output.mastering != "none":
        files = built.qa if built else []
        qa = QaSection(preset=job.output.mastering, passed=bool(files) and all(f.passed for f in files), files=files)
    return Report(
        exit_code=ending.exit_code,
        message=ending.message,
        provider=script.provider.fingerprint(),
        chunks=ChunkCounts(
            total=len(script.chunks),
            synthesized=counts["synthesized"],
            reused=counts["cached"],
            failed=counts["failed"],
            pending=counts["pending"],
        ),
        requests=outcome.requests,
        responses_by_status=dict(sorted(outcome.responses.items())),
        retries=dict(sorted(outcome.retries.items())),
        rate_limited=outcome.rate_limited,
        failed_chunks=failed,
        flagged_chunks={cid: p.flags for cid, p in (built.placements if built else {}).items() if p.flags},
        estimated_cost_usd=Costs(this_run=round(run_cost, 4), book=round(book_cost, 4)),
        timings_seconds={k: round(v, 3) for k, v in timings.items()},
        stage_seconds={k: round(v, 3) for k, v in (built.stage_seconds if built else {}).items()},
        stage_runs=dict(built.stage_runs) if built else {},
        review=review_counts(script.review, script.takes),
        not_read=list(script.document.dropped),
        outputs=ending.on_disk if ending.on_disk is not None else built_outputs,
        outputs_reused=bool(built and built.reused),
        qa=qa,
        text_prepared=ending.text_prepared,
        outputs_current=ending.exit_code == EXIT_OK,
        proof=_proof_section(script, proof) if proof is not None else None,
    )


def _proof_section(script: Script, proof: ProofOutcome) -> ProofSection:
    failing = set(proof.failed())
    failed = [take.id for take in script.takes if script.key_of(take) in failing]
    return ProofSection(
        model=proof.model,
        heard=proof.requests,
        retakes=proof.retakes,
        failed=failed,
        cost_usd=proof.cost_usd,
        not_retaken=len(proof.over_budget),
    )


def _costs(script: Script, outcome: SynthesisOutcome) -> tuple[float, float, list[str]]:
    """What this run's requests cost, what the whole book costs, and the chunks whose takes failed."""
    book_cost = 0.0
    failed: list[str] = []
    for take in script.takes:
        book_cost += expected_cost(script.job, script.provider_of(take).profile, take.tokens, take.chars, take.text)
        result = outcome.results.get(script.key_of(take))
        if result is not None and result.status == "failed":
            failed += [c.id for c in take.chunks]
    return run_cost(script, outcome), book_cost, failed
