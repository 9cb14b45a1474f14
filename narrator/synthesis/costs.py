"""What a request costs. Each provider states its list price (its profile); a job's ``prices:`` table overrides
any model's, since relays differ."""

from __future__ import annotations

from ..job.spec import Job
from ..providers.base import Price, Profile
from .scheduler import SynthesisOutcome
from .script import Script


def price_for(job: Job, profile: Profile) -> Price:
    return job.prices.get(profile.model or "", profile.price)


def request_cost(price: Price, tokens: int, chars: int, audio_seconds: float) -> float:
    """One request's price: its input tokens and characters, and the audio that comes back."""
    return (
        tokens * price.per_million_input_tokens / 1e6
        + chars * price.per_million_chars / 1e6
        + audio_seconds / 3600 * price.per_audio_hour
    )


def expected_cost(job: Job, profile: Profile, tokens: int, chars: int, text: str) -> float:
    """A take's price before it is made: at the audio its text should give (as the plan prices it)."""
    return request_cost(price_for(job, profile), tokens, chars, profile.speech_seconds(text))


def run_cost(script: Script, outcome: SynthesisOutcome) -> float:
    """What this run's requests for ``script``'s takes cost: each take made paid once, for the audio it gave."""
    cost = 0.0
    paid: set[str] = set()
    for take in script.takes:
        key, profile = script.key_of(take), script.provider_of(take).profile
        result = outcome.results.get(key)
        if result is not None and result.status == "synthesized" and key not in paid:
            paid.add(key)
            cost += request_cost(price_for(script.job, profile), take.tokens, take.chars, result.duration)
    return cost
