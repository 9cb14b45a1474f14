"""The provider interface: text in, PCM audio out. A new provider is one small class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..audio import Audio


@dataclass(frozen=True)
class ProviderLimits:
    max_chars: int | None = None
    max_tokens: int | None = None  # input tokens, instructions included
    count_instructions: bool = False  # do instructions count toward max_tokens?


@dataclass
class RequestStats:
    """What a provider saw while talking to its service; the scheduler adds it to the report."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class TakeSink(Protocol):
    """Where a take's PCM goes as it arrives (the cache's PendingTake, or a buffer)."""

    rate: int | None
    samples: int

    def write(self, pcm: bytes, rate: int) -> None: ...


class PcmBuffer:
    """A TakeSink in memory, for callers that want the Audio itself."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self.samples = 0
        self._pcm = bytearray()

    def write(self, pcm: bytes, rate: int) -> None:
        if self.rate not in (None, rate):
            raise ValueError(f"sample rate changed mid-take: {self.rate} then {rate}")
        self.rate = rate
        self._pcm += pcm
        self.samples = len(self._pcm) // 2

    def audio(self) -> Audio:
        return Audio(bytes(self._pcm), self.rate or 0)


class Provider(ABC):
    name: str = "provider"

    #: called with (seconds to wait, cause) when the service asks everyone to slow down
    on_backoff: Callable[[float, str], None] | None = None
    #: called when the service has accepted a request (a 200 status line) before its audio is complete:
    #: the scheduler's first request need not wait for a whole take to learn that the key and model work
    on_accepted: Callable[[], None] | None = None

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that shapes the sound besides the text: part of every cache key."""

    @abstractmethod
    def limits(self) -> ProviderLimits: ...

    @abstractmethod
    async def synthesize(self, text: str) -> Audio:
        """Speak one chunk. Raises a ProviderError subclass that says whether to retry."""

    async def synthesize_into(self, text: str, sink: TakeSink) -> None:
        """Speak one chunk into ``sink``; this is what the scheduler calls. The default speaks it whole and
        writes it; a provider whose service streams overrides it, so a long take never sits in memory."""
        audio = await self.synthesize(text)
        sink.write(audio.pcm, audio.rate)

    def voices(self) -> list[str]:
        return []

    def estimate_seconds(self, text: str) -> float:
        """Expected audio length, for plans and sanity checks: ~15 characters per second at speed 1."""
        return len(text) / 15.0

    async def start(self) -> None:
        """Load models, open connections. Called once before the first request."""

    async def aclose(self) -> None:
        """Release what start() opened."""
