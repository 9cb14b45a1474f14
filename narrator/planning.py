"""Plans and costs: what a run will do, before it does it. No network, no synthesis."""

from __future__ import annotations

from typing import Any

from .chunker import Chunk
from .costs import chunk_cost, price_for
from .pipeline import Prepared, prepare_job
from .spec import Job

# Seconds per request, for time estimates: a full 4096-character chunk took 44-62 s on the real endpoint.
REQUEST_OVERHEAD = 0.5
SECONDS_PER_CHAR = 0.013
LOCAL_REALTIME_PER_THREAD = 12.0  # piper: measured ~24x real time on 2 cores, 2 threads


def request_seconds(prepared: Prepared, chunk: Chunk) -> float:
    if prepared.job.voice.provider == "local":
        return prepared.provider.estimate_seconds(chunk.spoken) / LOCAL_REALTIME_PER_THREAD
    return REQUEST_OVERHEAD + SECONDS_PER_CHAR * chunk.chars


def make_plan(job: Job, prepared: Prepared | None = None) -> dict[str, Any]:
    prepared = prepared or prepare_job(job)
    provider = prepared.provider
    fingerprint = provider.fingerprint()
    price = price_for(job, fingerprint.get("model"))
    cached = prepared.cached_keys()
    chapters: list[dict[str, Any]] = []
    seen: set[str] = set()
    busy_seconds = 0.0
    to_send = tokens_to_send = 0
    for number, chapter in enumerate(prepared.chapters, start=1):
        row = {"number": number, "title": chapter.title, "chunks": 0, "characters": 0, "tokens": 0, "cached": 0,
               "audio_seconds": 0.0, "cost_usd": 0.0, "cost_to_finish_usd": 0.0}  # fmt: skip
        for chunk in (c for c in prepared.chunks if c.chapter == number - 1):
            key = prepared.keys[chunk.id]
            seconds = provider.estimate_seconds(chunk.spoken)
            cost = chunk_cost(price, chunk, seconds)
            row["chunks"] += 1
            row["characters"] += chunk.chars
            row["tokens"] += chunk.tokens
            row["audio_seconds"] += seconds
            row["cost_usd"] += cost
            if key in cached:
                row["cached"] += 1
            elif key not in seen:
                seen.add(key)
                row["cost_to_finish_usd"] += cost
                busy_seconds += request_seconds(prepared, chunk)
                to_send += 1
                tokens_to_send += chunk.tokens
        chapters.append(row)
    workers = job.concurrency if job.voice.provider != "local" else getattr(provider, "threads", 1)
    bounds = {"concurrency": busy_seconds / max(1, workers)}
    if job.requests_per_minute:
        bounds["requests_per_minute"] = to_send / job.requests_per_minute * 60
    if job.tokens_per_minute:
        bounds["tokens_per_minute"] = tokens_to_send / job.tokens_per_minute * 60
    summed = ("chunks", "characters", "tokens", "cached", "audio_seconds", "cost_usd", "cost_to_finish_usd")
    total: dict[str, Any] = {key: sum(c[key] for c in chapters) for key in summed}
    total.update(
        requests_to_send=to_send,
        time_seconds=max(bounds.values()),
        time_bound_by=max(bounds, key=lambda k: bounds[k]),
    )
    for row in [*chapters, total]:
        for key in ("audio_seconds", "cost_usd", "cost_to_finish_usd", "time_seconds"):
            if key in row:
                row[key] = round(row[key], 4)
    return {
        "job": str(job.path),
        "title": prepared.document.title,
        "provider": fingerprint,
        "price": price.__dict__,
        "limits": {"max_chars": prepared.limits.max_chars, "max_tokens_for_text": prepared.limits.max_tokens},
        "concurrency": job.concurrency,
        "requests_per_minute": job.requests_per_minute,
        "tokens_per_minute": job.tokens_per_minute,
        "budget_usd": job.budget_usd,
        "chapters": chapters,
        "total": total,
    }


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


_COLUMNS = "{:>3}  {:<32} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9}"


def _row(number: object, title: str, r: dict[str, Any]) -> str:
    return _COLUMNS.format(
        number, title[:32], r["chunks"], r["cached"], r["characters"], r["tokens"],
        _minutes(r["audio_seconds"]), f"${r['cost_usd']:.3f}",
    )  # fmt: skip


def render_plan(plan: dict[str, Any]) -> str:
    voice = plan["provider"]
    header = _COLUMNS.format("#", "chapter", "chunks", "cached", "chars", "tokens", "audio", "cost")
    rule = "-" * len(header)
    t = plan["total"]
    lines = [f"{plan['title']}: {voice.get('provider')} {voice.get('model') or ''} {voice.get('voice')}", header, rule]
    lines += [_row(c["number"], c["title"], c) for c in plan["chapters"]]
    lines += [rule, _row("", "total", t), ""]
    lines.append(
        f"to do: {t['requests_to_send']} requests, about ${t['cost_to_finish_usd']:.3f}, about "
        f"{_minutes(t['time_seconds'])} at concurrency {plan['concurrency']} (bound by {t['time_bound_by']})"
    )
    if plan["budget_usd"] is not None:
        verdict = "within" if t["cost_to_finish_usd"] <= plan["budget_usd"] else "OVER"
        lines.append(f"budget: ${plan['budget_usd']:.2f} ({verdict})")
    return "\n".join(lines)
