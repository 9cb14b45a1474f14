"""Prices per model, and what a chunk costs. Relays differ: a job can override any model's price."""

from __future__ import annotations

from .chunker import Chunk
from .spec import Job, Price

# List prices (../shared/api-contract.md). gpt-4o-mini-tts bills audio output tokens: $12 per million,
# about 20.5 tokens per second of speech, so about $0.886 per hour of audio, plus $0.60 per million input tokens.
PRICES: dict[str, Price] = {
    "gpt-4o-mini-tts": Price(per_million_input_tokens=0.60, per_audio_hour=12.0 * 20.5 * 3600 / 1e6),
    "tts-1": Price(per_million_chars=15.0),
    "tts-1-hd": Price(per_million_chars=30.0),
}
FREE = Price()


def price_for(job: Job, model: str | None) -> Price:
    if job.voice.provider == "local":
        return FREE
    overrides = dict(job.prices)
    return overrides.get(model or "", PRICES.get(model or "", FREE))


def chunk_cost(price: Price, chunk: Chunk, audio_seconds: float) -> float:
    return (
        chunk.tokens * price.per_million_input_tokens / 1e6
        + chunk.chars * price.per_million_chars / 1e6
        + audio_seconds / 3600 * price.per_audio_hour
    )
