"""What a provider is: settings it reads from the job's ``voice:``, a profile the rest of narrator plans with,
and one coroutine that speaks a take. A new provider is one module defining ``KIND`` plus its line in the
registry (providers/__init__.py); nothing else in narrator names a provider.

The shape follows httpx's transport: a caller sees ``profile``, ``fingerprint()``, ``synthesize()`` and
``aclose()``, and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from ..core.fields import Range, Text


class VoiceSpec(BaseModel):
    """The job's ``voice:`` keys that every provider reads. A provider that takes more keys subclasses this
    (its ``Settings``); the spec validates ``voice:`` against the class the named provider declares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Text = "local"
    voice: Text | None = None  # None: the provider's default
    instructions: Text | None = None  # for voices that take them; counted toward max_tokens where they count
    speed: Annotated[float, Range(0.25, 4.0)] = 1.0


class Price(BaseModel):
    """Dollars. A service may charge by input tokens, by characters, by audio length, or a mix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_million_input_tokens: Annotated[float, Range(0, 1e6)] = 0.0
    per_million_chars: Annotated[float, Range(0, 1e6)] = 0.0
    per_audio_hour: Annotated[float, Range(0, 1e6)] = 0.0


FREE = Price()


@dataclass(frozen=True)
class ProviderLimits:
    max_chars: int | None = None
    max_tokens: int | None = None  # input tokens, instructions included where they count
    count_instructions: bool = False  # do the instructions travel with (and count toward) every request?


def words_at(words_per_minute: float, speed: float) -> Callable[[str], float]:
    """An estimate of a text's spoken length from its words (voices that pause between sentences)."""
    return lambda text: len(text.split()) / words_per_minute * 60.0 / speed


def characters_at(chars_per_second: float, speed: float) -> Callable[[str], float]:
    """An estimate of a text's spoken length from its characters: API voices run 13.5-16 a second at speed 1."""
    return lambda text: len(text) / chars_per_second / speed


@dataclass(frozen=True)
class Profile:
    """What the rest of narrator needs to know of a configured provider to plan, price and pace a run."""

    limits: ProviderLimits
    #: expected audio length of a text, in seconds: plans, costs, and the take checks of assembly
    speech_seconds: Callable[[str], float]
    #: expected wall time of one request for a text, in seconds: the plan's time bound
    request_seconds: Callable[[str], float]
    price: Price = FREE  # list price of what it is configured to use
    model: str | None = None  # the name a job's ``prices:`` table may override
    key_env: str | None = None  # the environment variable that holds its secret, if it needs one
    #: whose rate limits its requests count against (an endpoint and a key's variable): a catalogue's books with
    #: the same account share one limiter. None: nobody else's (a local voice)
    account: str | None = None
    parallelism: int | None = None  # takes it can make at once, whatever the job's concurrency (None: no cap)
    #: characters a take groups paragraphs up to (takes.py), unless the job's chunking.target_chars says; 0: one
    #: paragraph per take (a local voice pays nothing per request)
    take_chars: int = 0
    takes_instructions: bool = False  # does it read ``instructions`` (how to say a take)? The review page asks


class TakeSink(Protocol):
    """Where a take's PCM goes as it arrives (the cache's PendingTake)."""

    rate: int | None
    samples: int

    def write(self, pcm: bytes, rate: int) -> None: ...


class Events(Protocol):
    """What a provider tells the scheduler while it works."""

    def accepted(self) -> None:
        """The service took the request (its status line) before the audio is complete."""

    def slow_down(self, seconds: float, cause: str) -> None:
        """The service asked everyone to wait (its quota is spent until a reset)."""

    def response(self, status: str) -> None:
        """One response, by status ("200", "429", "timeout", ...), for the report."""


@dataclass(frozen=True)
class ProviderContext:
    """What a run offers a provider besides its settings."""

    concurrency: int  # requests the job allows in flight
    scratch: Path  # a folder of the run's for temporary files (inside the output folder)


class Provider(ABC):
    profile: Profile

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that shapes the sound besides the text: part of every cache key."""

    @abstractmethod
    async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
        """Speak one take into ``sink``. Raises a ProviderError subclass that says whether to retry. Loads
        models or opens connections on first use."""

    async def aclose(self) -> None:
        """Release what synthesize() opened."""


S = TypeVar("S", bound=VoiceSpec)


@dataclass(frozen=True)
class ProviderKind(Generic[S]):
    """A provider as the registry lists it."""

    name: str
    settings: type[S]  # the ``voice:`` keys it accepts, their defaults and checks
    create: Callable[[S, ProviderContext], Provider]  # no network, no model loading: cheap enough for validate
    voices: Callable[[], Mapping[str, Sequence[str]]]  # for ``narrator voices``: heading -> voice names
