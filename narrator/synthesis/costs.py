"""What a request costs. Each provider states its list price (its profile); a job's ``prices:`` table overrides
any model's, since relays differ."""

from __future__ import annotations

from ..job.spec import Job
from ..providers.base import Price, Profile


def price_for(job: Job, profile: Profile) -> Price:
    return job.prices.get(profile.model or "", profile.price)


def request_cost(price: Price, tokens: int, chars: int, audio_seconds: float) -> float:
    """One request's price: its input tokens and characters, and the audio that comes back."""
    return (
        tokens * price.per_million_input_tokens / 1e6
        + chars * price.per_million_chars / 1e6
        + audio_seconds / 3600 * price.per_audio_hour
    )
