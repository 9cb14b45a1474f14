"""The OpenAI-compatible speech endpoint: ``POST {base_url}/audio/speech``, through OpenAI or a relay.

Every failure is classified as ../shared/api-contract.md says (see ``classify``); every body is
checked before it is trusted: a truncated or undecodable body is retried, never cached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator

from ..core import errors
from ..core.fields import OneOf, Range, Text
from ..core.takefile import TakeFile
from .base import (
    Events,
    Price,
    Profile,
    Provider,
    ProviderKind,
    ProviderLimits,
    TakeSink,
    VoiceSpec,
    characters_at,
)
from .http import classify, connect_failure, parse_reset, receive_audio, redact_key
from .intake import IntakeProcesses

log = logging.getLogger("narrator.openai")

KIND_NAME = "openai"
OPENAI_BASE_URL = "https://api.openai.com/v1"
VOICES_13 = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
VOICES_9 = ("alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer")
MODEL_VOICES: dict[str, tuple[str, ...]] = {"gpt-4o-mini-tts": VOICES_13, "tts-1": VOICES_9, "tts-1-hd": VOICES_9}
DEFAULT_MODEL = "gpt-4o-mini-tts"
# List prices (../shared/api-contract.md). gpt-4o-mini-tts bills audio output tokens: $12 per million,
# about 20.5 tokens per second of speech, so about $0.886 per hour of audio, plus $0.60 per million input tokens.
PRICES: dict[str, Price] = {
    "gpt-4o-mini-tts": Price(per_million_input_tokens=0.60, per_audio_hour=12.0 * 20.5 * 3600 / 1e6),
    "tts-1": Price(per_million_chars=15.0),
    "tts-1-hd": Price(per_million_chars=30.0),
}
# Seconds per request, for the plan's time bound: a full 4096-character chunk took 44-62 s on the real endpoint.
REQUEST_OVERHEAD = 0.5
SECONDS_PER_CHAR = 0.013


def takes_instructions(model: str) -> bool:
    return not model.startswith("tts-1")


def _http_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return value


# Paragraphs grouped up to about this many characters a request: 2 107 requests for a 122 000-word novel at one
# per paragraph (most are short lines of dialogue) become about 480, and the voice keeps the intonation of an
# exchange; much longer, and gpt-4o-mini-tts is more likely to rush, drift or drop words.
TAKE_CHARS = 1800


class Settings(VoiceSpec):
    """``voice:`` keys of the OpenAI-compatible provider, beyond the common ones."""

    model: Text = DEFAULT_MODEL  # or a relay's name
    base_url: Annotated[Text, AfterValidator(_http_url)] | None = None  # default: $OPENAI_BASE_URL, else OpenAI's
    api_key_env: Text = "OPENAI_API_KEY"  # the variable that holds the key (never written anywhere)
    response_format: Annotated[Text, OneOf(("pcm", "wav", "mp3"))] = "pcm"
    timeout: Annotated[float, Range(1, 3600)] = 180.0  # a full 4096-character take: up to a minute
    #: processes that receive the takes (providers/intake.py); 0: the run's event loop does; None: by concurrency
    intake_processes: Annotated[int, Range(0, 32, integer=True)] | None = None


def intake_processes(settings: Settings, concurrency: int) -> int:
    """How many processes receive the takes. Measured with `python bench/run.py intake` (2 cores, the fake at
    0.4 s a request, the back end encoding meanwhile): takes of 30 s at concurrency 32 came to 1.73 x their bound
    in the event loop (70 MB/s of PCM taken in), 1.44 x in two processes (85 MB/s); at concurrency 8 processes
    cost more than they give (1.048 against 1.094, 30 s takes): below 16 requests in flight, the event loop."""
    if settings.intake_processes is not None:
        return settings.intake_processes
    return min(os.cpu_count() or 1, concurrency // 16)


class OpenAIProvider(Provider):
    def __init__(self, spec: Settings, *, concurrency: int):
        self.spec = spec
        self.model = spec.model
        self.base_url = (spec.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
        self.voice = spec.voice or ("marin" if takes_instructions(self.model) else "alloy")
        self.concurrency = concurrency
        self.profile = Profile(
            limits=ProviderLimits(
                max_chars=4096, max_tokens=2000 if self.model.startswith("gpt-4o") else None, count_instructions=True
            ),
            speech_seconds=characters_at(15.0, spec.speed),
            request_seconds=lambda text: REQUEST_OVERHEAD + SECONDS_PER_CHAR * len(text),
            price=PRICES.get(self.model, Price()),
            model=self.model,
            key_env=spec.api_key_env,
            account=f"{self.base_url} ${spec.api_key_env}",
            take_chars=TAKE_CHARS,
            takes_instructions=takes_instructions(self.model),
        )
        self._client: httpx.AsyncClient | None = None
        processes = intake_processes(spec, concurrency)
        # its processes start on the first request; a provider sent to a Ray task receives in its event loop
        self._intake = (
            IntakeProcesses(KIND_NAME, spec.model_dump(mode="json"), concurrency, processes) if processes else None
        )
        self._answered = False  # has the server answered any request of this run? (else: unreachable is fatal)
        self._had_audio = False  # has any answer been audio? (else: a body that is not audio is fatal)
        self._short: dict[str, list[float]] = {}  # text -> lengths of takes that came back too short for it
        self._check()
        # read when the first request is made, not before: plan and validate need no key (run checks for it first)
        self._key = ""

    @property
    def format(self) -> str:
        return self.spec.response_format

    @property
    def custom(self) -> bool:
        """A relay's address, not OpenAI's: a model or voice it does not know is only a warning."""
        return self.base_url != OPENAI_BASE_URL

    def __getstate__(self) -> dict[str, Any]:
        """A provider travels (to a Ray task) without its connection or its key: it reads the key from the
        environment of the process that sends its first request."""
        return {**self.__dict__, "_client": None, "_key": "", "_intake": None}

    def _check(self) -> None:
        problems: list[str] = []
        # a relay may offer models and voices OpenAI does not: there, an unknown name is only a warning
        doubt = log.warning if self.custom else problems.append
        voices = MODEL_VOICES.get(self.model)
        if voices is None:
            doubt(f"voice.model: {self.model!r} is not a known speech model ({', '.join(MODEL_VOICES)})")
        elif self.voice not in voices:
            doubt(f"voice.voice: {self.model} has no voice {self.voice!r}; available: {', '.join(voices)}")
        if self.spec.instructions and not takes_instructions(self.model):
            problems.append(f"voice.instructions: {self.model} does not take instructions (gpt-4o-mini-tts does)")
        if len(self.spec.instructions or "") > 4096:
            problems.append("voice.instructions: at most 4096 characters")
        if problems:
            raise errors.JobError(problems)

    def fingerprint(self) -> dict[str, Any]:
        # The base URL is left out on purpose: the same model and voice through another relay (or after
        # a failover) is the same sound, and a takes cache should survive the switch.
        return {
            "provider": "openai",
            "model": self.model,
            "voice": self.voice,
            "instructions": self.spec.instructions if takes_instructions(self.model) else None,
            "speed": self.spec.speed,
            "format": self.format,
        }

    def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            self._key = os.environ.get(self.spec.api_key_env, "").strip()
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self._key}"},
                timeout=httpx.Timeout(self.spec.timeout, connect=15.0),
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
        return self._client

    async def aclose(self) -> None:
        if self._intake is not None:
            await self._intake.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def redact(self, text: str) -> str:
        return redact_key(text, self._key)

    def payload(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": self.format,
            "speed": self.spec.speed,
        }
        if self.spec.instructions and takes_instructions(self.model):
            body["instructions"] = self.spec.instructions
        return body

    def deadline(self, text: str) -> float:
        """Seconds the whole request may take (connect, first byte, every byte): the endpoint generates about
        4x faster than real time, so the take's expected length plus a margin, and never over voice.timeout. A
        server that trickles its body is cut off here, not by a read timeout that each byte restarts."""
        return min(self.spec.timeout, 30.0 + self.profile.speech_seconds(text))

    async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
        """Stream the take into ``sink`` as it arrives: a 4096-character take is ~13 MB of PCM, and eight
        of them in flight must not mean eight in memory. With intake processes, a child receives it."""
        if self._intake is not None and isinstance(sink, TakeFile):
            await self._through_child(self._intake, text, sink, events)
            return
        deadline = self.deadline(text)
        try:
            await asyncio.wait_for(self._request(text, sink, events), deadline)
        except asyncio.TimeoutError:
            events.response("timeout")
            raise errors.NetworkError(f"timed out: no complete answer within {deadline:.0f} s") from None
        except httpx.TimeoutException as exc:
            events.response("timeout")
            raise errors.NetworkError(f"timed out: {type(exc).__name__}") from None
        except httpx.ConnectError as exc:
            events.response("network")
            message = self.redact(f"voice.base_url {self.base_url}: {connect_failure(exc)}")
            raise (errors.NetworkError if self._answered else errors.Unreachable)(message) from None
        except httpx.TransportError as exc:
            events.response("network")
            raise errors.NetworkError(self.redact(f"connection failed: {type(exc).__name__}: {exc}")) from None
        except errors.BadAudio as exc:
            if self._had_audio or not exc.args[0].startswith("not audio"):
                raise
            raise errors.NotSpeech(f"voice.base_url {self.base_url}: {exc}") from None
        self.check_duration(text, sink)
        self._had_audio = True

    async def _through_child(self, intake: IntakeProcesses, text: str, take: TakeFile, events: Events) -> None:
        learnt = {"answered": self._answered, "had_audio": self._had_audio}
        try:
            await intake.synthesize(text, take, events, learnt)
        except errors.ProviderError as exc:
            self._answered = self._answered or exc.status is not None
            raise
        self._answered = self._had_audio = True

    def learn(self, *, answered: bool, had_audio: bool) -> None:
        """What the run has learnt of the server in other processes (providers/intake.py): has it answered, has
        an answer been audio?"""
        self._answered = self._answered or answered
        self._had_audio = self._had_audio or had_audio

    async def _request(self, text: str, sink: TakeSink, events: Events) -> None:
        client = self._open()
        async with client.stream("POST", "/audio/speech", json=self.payload(text)) as response:
            self._answered = True
            events.response(str(response.status_code))
            self._watch_rate_headers(response.headers, events)
            if response.status_code != 200:
                raise classify(response.status_code, response.headers, await response.aread(), self.redact)
            events.accepted()  # the audio streams as it is made: accepted long before it is complete
            await receive_audio(response, sink, self.format, self.profile.speech_seconds(text))

    def _watch_rate_headers(self, headers: httpx.Headers, events: Events) -> None:
        """A server that says none are left until a reset: everyone waits for it, before the 429s."""
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    events.slow_down(reset, f"{kind} exhausted")

    def check_duration(self, text: str, take: TakeSink) -> None:
        """A body cut short mid-stream looks like a normal end: catch it by its length. Speech at speed 1
        runs 13.5-16 characters a second; under 0.6x of the estimate (25 a second) no voice speaks, so
        the body was cut. Short texts vary too much to judge. A voice that is simply that fast gives the same
        length again: the third time it is kept (assembly flags its pace for a reviewer)."""
        expected = self.profile.speech_seconds(text)
        if take.samples == 0 or not take.rate:
            raise errors.BadAudio("empty audio body")
        seconds = take.samples / take.rate
        if expected >= 2.0 and seconds < 0.6 * expected:
            # three answers of the same short length: the voice's pace. Twice is not enough: a server that cuts
            # its bodies at the same point (the fake halves them) would slip a truncated take through
            before = self._short.setdefault(text, [])
            if len(before) >= 2 and all(abs(b - seconds) <= 0.02 * seconds + 0.05 for b in before[-2:]):
                return
            before.append(seconds)
            raise errors.BadAudio(
                f"audio too short for its text: {seconds:.1f} s, about {expected:.1f} s expected (truncated?)"
            )


KIND = ProviderKind(
    name=KIND_NAME,
    settings=Settings,
    create=lambda settings, context: OpenAIProvider(settings, concurrency=context.concurrency),
    voices=lambda: {f"openai {model}": names for model, names in MODEL_VOICES.items()},
)
