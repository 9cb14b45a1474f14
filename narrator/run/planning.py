"""Plans and costs: what a run will do, before it does it. No network, no synthesis."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.records import Plan, PlanCast, PlanProof, PlanRow
from ..job.cast import model_requests_to_send
from ..job.castmodel import estimated_cost
from ..job.spec import Job
from ..providers.transcribe import hearing_cost
from ..synthesis.costs import price_for, request_cost
from ..synthesis.proofs import ProofStore
from ..synthesis.script import Script, prepare_script
from ..text.chunker import Chunk


@dataclass
class _ToSend:
    """What a run still has to request: each missing take once."""

    requests: int = 0
    tokens: int = 0
    busy_seconds: float = 0.0  # Σ expected request time
    seen: set[str] = field(default_factory=set)


def _chapter_rows(script: Script, to_send: _ToSend) -> list[PlanRow]:
    prices = {id(p): price_for(script.job, p.profile) for p in script.providers()}  # a source's own voice, speed
    cached = script.cached_keys()
    rows = []
    for index, chapter in enumerate(script.chapters):
        counts: Counter[str] = Counter(takes=0)  # a chapter without takes says 0, not nothing
        sums: defaultdict[str, float] = defaultdict(float)  # seconds and dollars
        for take in script.takes_by_chapter[index]:
            key, voice = script.key_of(take), script.provider_of(take)
            seconds = voice.profile.speech_seconds(take.text)
            cost = request_cost(prices[id(voice)], take.tokens, take.chars, seconds)
            counts.update(chunks=len(take.chunks), takes=1, characters=take.chars, tokens=take.tokens)  # as billed
            sums["audio_seconds"] += seconds
            sums["cost_usd"] += cost
            if key in cached:
                counts["cached"] += len(take.chunks)
            elif key not in to_send.seen:
                to_send.seen.add(key)
                sums["cost_to_finish_usd"] += cost
                to_send.busy_seconds += voice.profile.request_seconds(take.text)
                to_send.requests += 1
                to_send.tokens += take.tokens
        opening = _opening(script.by_chapter[index])
        figures = {**counts, **sums}
        rows.append(PlanRow(number=index + 1, title=chapter.title, opening=opening, **_rounded(figures)))
    return rows


def _rounded(figures: Mapping[str, float]) -> dict[str, Any]:
    """Counts as they are; seconds and dollars to four places."""
    kept = ("audio_seconds", "cost_usd", "cost_to_finish_usd", "time_seconds")
    return {key: round(value, 4) if key in kept else value for key, value in figures.items()}


def make_plan(job: Job, script: Script | None = None) -> Plan:
    script = script or prepare_script(job)
    profile = script.provider.profile
    to_send = _ToSend()
    chapters = _chapter_rows(script, to_send)
    workers = min(job.concurrency, profile.parallelism or job.concurrency)
    bounds = {"concurrency": to_send.busy_seconds / workers}
    if job.requests_per_minute:
        bounds["requests_per_minute"] = to_send.requests / job.requests_per_minute * 60
    if job.tokens_per_minute:
        bounds["tokens_per_minute"] = to_send.tokens / job.tokens_per_minute * 60
    summed = ("chunks", "takes", "characters", "tokens", "cached", "audio_seconds", "cost_usd", "cost_to_finish_usd")
    sums = {key: sum(getattr(c, key) or 0 for c in chapters) for key in summed}
    bound_by = max(bounds, key=lambda k: bounds[k])
    proof = _proof(script)
    if proof is not None:  # the budget covers hearing the takes too
        sums["cost_to_finish_usd"] += proof.cost_usd
    cast = _cast(script)
    if cast is not None:  # and asking who says what
        sums["cost_to_finish_usd"] += cast.cost_usd
    figures = {**sums, "requests_to_send": to_send.requests, "time_seconds": bounds[bound_by]}
    total = PlanRow(**_rounded(figures), time_bound_by=bound_by)
    return Plan(
        job=str(job.path),
        title=script.document.title,
        provider=script.provider.fingerprint(),
        price=price_for(job, profile).model_dump(),
        limits={"max_chars": script.limits.max_chars, "max_tokens_for_text": script.limits.max_tokens},
        concurrency=job.concurrency,
        requests_per_minute=job.requests_per_minute,
        tokens_per_minute=job.tokens_per_minute,
        budget_usd=job.budget_usd,
        chapters=chapters,
        total=total,
        not_read=list(script.document.dropped),
        proof=proof,
        cast=cast,
    )


def _cast(script: Script) -> PlanCast | None:
    """The chapters a run would send to the model for attribution (none once the cast file exists)."""
    spec = script.job.cast
    if spec is None or spec.attribution != "model":
        return None
    requests, quotations = model_requests_to_send(script.job, script.chapters)
    cost = round(estimated_cost(script.job, requests, quotations), 4)
    return PlanCast(model=spec.model, chapters_to_ask=len(requests), quotations=quotations, cost_usd=cost)


def _proof(script: Script) -> PlanProof | None:
    """The takes a run would hear: each take not heard before by this model (an approved take never is)."""
    spec = script.job.proof
    if spec is None:
        return None
    store, seen = ProofStore(script.cache.root), set()
    count, seconds = 0, 0.0
    for take in script.takes:
        key, decision = script.key_of(take), script.decision(take)
        if key in seen or (decision is not None and decision.status == "approved"):
            continue
        seen.add(key)
        digest = script.cache.audio_hash(key) if script.cache.has(key) else None
        if digest is not None and store.get(digest, spec.model) is not None:
            continue  # heard before
        layout = script.cache.layout(key) if digest is not None else None
        count += 1
        seconds += layout.duration if layout else script.provider_of(take).profile.speech_seconds(take.text)
    cost = round(hearing_cost(spec.model, seconds), 4)
    return PlanProof(model=spec.model, takes_to_hear=count, audio_minutes=round(seconds / 60, 2), cost_usd=cost)


def _opening(chunks: list[Chunk], words: int = 12) -> str:
    spoken = " ".join(c.spoken for c in chunks[:3]).split()
    return " ".join(spoken[:words]) + (" ..." if len(spoken) > words else "")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


_COLUMNS = "{:>3}  {:<32} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9}"


def _row(number: object, title: str, r: PlanRow) -> str:
    return _COLUMNS.format(
        number, title[:32], r.chunks, r.cached, r.characters, r.tokens, _minutes(r.audio_seconds), f"${r.cost_usd:.3f}"
    )


def render_plan(plan: Plan) -> str:
    voice = plan.provider
    header = _COLUMNS.format("#", "chapter", "chunks", "cached", "chars", "tokens", "audio", "cost")
    rule = "-" * len(header)
    t = plan.total
    lines = [f"{plan.title}: {voice.get('provider')} {voice.get('model') or ''} {voice.get('voice')}", header, rule]
    lines += [_row(c.number, c.title or "", c) for c in plan.chapters]
    lines += [rule, _row("", "total", t), ""]
    lines.append(
        f"to do: {t.requests_to_send} requests, about ${t.cost_to_finish_usd:.3f}, about "
        f"{_minutes(t.time_seconds or 0.0)} at concurrency {plan.concurrency} (bound by {t.time_bound_by})"
    )
    if plan.proof is not None:
        p = plan.proof
        lines.append(
            f"proof: {p.takes_to_hear} takes to hear ({p.audio_minutes:.1f} min of audio), about ${p.cost_usd:.3f}"
        )
    if plan.cast is not None:
        c = plan.cast
        asking = f"{c.chapters_to_ask} chapters to ask {c.model} ({c.quotations} quotations)"
        lines.append(f"cast: {asking}, about ${c.cost_usd:.4f}")
    lines += [f"not read: {part}" for part in plan.not_read]
    if plan.budget_usd is not None:
        verdict = "within" if t.cost_to_finish_usd <= plan.budget_usd else "OVER"
        lines.append(f"budget: ${plan.budget_usd:.2f} ({verdict})")
    return "\n".join(lines)
