"""What a chunk costs. Each provider states its list price (its profile); a job's ``prices:`` table overrides
any model's, since relays differ."""

from __future__ import annotations

from .chunker import Chunk
from .providers.base import Price, Profile
from .spec import Job


def price_for(job: Job, profile: Profile) -> Price:
    return job.prices.get(profile.model or "", profile.price)


def chunk_cost(price: Price, chunk: Chunk, audio_seconds: float) -> float:
    return (
        chunk.tokens * price.per_million_input_tokens / 1e6
        + chunk.chars * price.per_million_chars / 1e6
        + audio_seconds / 3600 * price.per_audio_hour
    )
