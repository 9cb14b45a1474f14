"""The cast on the review page: who reads each take, which quotation it belongs to, and the editor's change of a
quotation's speaker (written to the cast file as the editor's word: the next run redoes that quotation's takes)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..job.cast import CastQuotation, cast_path, read_cast, write_cast
from ..providers import provider_kind
from ..run.preflight import check_key
from ..synthesis.scheduler import Limiter, Work, synthesize_all
from ..synthesis.script import Script, provider_for, variant_key
from ..text.dialogue.quotes import find_quotations
from ..text.tokens import count_tokens
from .payloads import PageCharacter


def quotation_of_chunks(script: Script, chapter: int) -> dict[str, str]:
    """Chunk id -> the id of the quotation it reads a part of (chunks of narration have none)."""
    blocks = script.chapters[chapter].blocks
    parts: dict[int, list[tuple[int, int, str]]] = {}
    for q in find_quotations(chapter, blocks):
        for block, (begin, end) in q.parts:
            parts.setdefault(block, []).append((begin, end, q.id))
    found: dict[str, str] = {}
    at: dict[int, int] = {}
    for chunk in script.by_chapter[chapter]:
        start = at.get(chunk.block, 0)
        at[chunk.block] = start + len(chunk.text)
        first = start + len(chunk.text) - len(chunk.text.lstrip())
        for begin, end, quotation in parts.get(chunk.block, []):
            if begin <= first < end:
                found[chunk.id] = quotation
    return found


def speakers_of(script: Script) -> list[str]:
    """Who may read a take: the narrator and every character of the cast file."""
    cast = read_cast(cast_path(script.job.path))
    return ["narrator", *(c.name for c in cast.characters)] if cast else ["narrator"]


def set_speaker(script: Script, quotation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The editor gives a quotation to another speaker (a character of the cast, or the narrator)."""
    speaker = body.get("speaker")
    path = cast_path(script.job.path)
    cast = read_cast(path)
    if cast is None:
        raise ValueError("the job has no cast file yet: run `narrator cast` first")
    if speaker not in ["narrator", *(c.name for c in cast.characters)]:
        raise ValueError(f"not a speaker of the cast: {speaker!r}")
    for k, q in enumerate(cast.quotations):
        if q.id == quotation:
            cast.quotations[k] = CastQuotation(q.id, q.chapter, q.excerpt, str(speaker), 1.0, "editor")
            write_cast(path, cast, script.job.path.name)
            return {"quotation": quotation, "speaker": speaker}
    raise ValueError(f"no quotation {quotation} in the cast file")


def set_voice(script: Script, body: dict[str, Any]) -> dict[str, Any]:
    """The editor gives a character another voice or direction (the next run redoes that character's takes)."""
    path = cast_path(script.job.path)
    cast = read_cast(path)
    name = body.get("name")
    found = next((c for c in cast.characters if c.name == name), None) if cast else None
    if cast is None or found is None:
        raise ValueError(f"not a character of the cast: {name!r}")
    for key in ("voice", "instructions"):
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key}: a text was expected")
            setattr(found, key, value.strip() or None if isinstance(value, str) else None)
    write_cast(path, cast, script.job.path.name)
    return {"name": found.name, "voice": found.voice, "instructions": found.instructions}


SAMPLE = "I had not thought to see you here, and at this hour. Come in, and tell me everything."


def voice_sample(script: Script, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A line said in a voice (and direction) the editor is choosing, kept in the cache like a take: its address,
    or why there is none."""
    job = script.job
    update = {k: body[k] for k in ("voice", "instructions") if isinstance(body.get(k), str) and body[k].strip()}
    provider = provider_for(job, job.voice.model_copy(update=update))
    key = variant_key(provider.fingerprint(), SAMPLE, 0)
    if not script.cache.has(key):
        check_key(script)
        work = [Work(key, SAMPLE, count_tokens(SAMPLE), provider)]
        limiter = Limiter(job.requests_per_minute, job.tokens_per_minute)
        outcome = asyncio.run(synthesize_all(work, script.cache, concurrency=1, limiter=limiter, retry=job.retry))
        failed = [r.error for r in outcome.results.values() if r.status == "failed"]
        if failed or outcome.fatal is not None or not script.cache.has(key):
            return {"error": failed[0] if failed else str(outcome.fatal or "no audio came back")}, 502
    return {"audio": f"/sample/{key}"}, 200


def cast_panel(script: Script) -> tuple[list[PageCharacter] | None, list[str]]:
    """The cast file's characters for the page, and the voices the job's provider offers."""
    cast = read_cast(cast_path(script.job.path)) if script.job.cast is not None else None
    if cast is None:
        return None, []
    characters = [
        PageCharacter(name=c.name, lines=c.lines, voice=c.voice, instructions=c.instructions) for c in cast.characters
    ]
    offered = provider_kind(script.job.voice.provider).voices().values()
    return characters, list(dict.fromkeys(name for names in offered for name in names))
