"""The transcription endpoint: ``POST {base_url}/audio/transcriptions`` (OpenAI's multipart API), through OpenAI
or the relay that serves the speech. A take is uploaded as FLAC (lossless, about half the size of its PCM: a
4096-character take of four minutes is about 6 MB), or as Opus when FLAC would pass the endpoint's 25 MB. Every
failure is classified as speech failures are (http.py): retried by class, never retried on a 4xx; a 200 whose body
is not a transcript is an error of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass

import httpx

from ..core import errors
from ..core.audio import Audio
from .http import classify, connect_failure, redact_key

MODELS = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")
WORD_TIMES = ("whisper-1",)  # models that give each word's time (verbose_json, timestamp_granularities[]=word)
# List prices per minute of audio (../shared/api-contract.md)
PRICE_PER_MINUTE = {"gpt-4o-mini-transcribe": 0.003, "gpt-4o-transcribe": 0.006, "whisper-1": 0.006}


def hearing_cost(model: str, seconds: float) -> float:
    """What transcribing ``seconds`` of audio costs (a model not listed at whisper-1's price)."""
    return seconds / 60 * PRICE_PER_MINUTE.get(model, 0.006)


MAX_UPLOAD = 25 * 1024 * 1024


@dataclass(frozen=True)
class HeardWord:
    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[HeardWord, ...] | None = None  # with word times, when the model gives them


class ProofUnavailable(errors.FatalProviderError):
    """The transcription endpoint cannot hear takes (down, refuses the key, answers with no transcript): no
    proof can be made, and none is reported as passed."""

    cause = "proof_unavailable"
    what = "the transcription endpoint cannot proof-listen"
    advice = "check proof.base_url, proof.model and ${key_env}"


class Transcriber:
    """One endpoint and model. ``key_env``: the variable that holds the API key (read when first used)."""

    def __init__(self, base_url: str, key_env: str, model: str, *, timeout: float = 120.0, concurrency: int = 4):
        self.base_url, self.key_env, self.model = base_url.rstrip("/"), key_env, model
        self.timeout, self.concurrency = timeout, concurrency
        self._client: httpx.AsyncClient | None = None
        self._key = ""

    def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            self._key = os.environ.get(self.key_env, "").strip()
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self._key}"},
                timeout=httpx.Timeout(self.timeout, connect=15.0),
                limits=httpx.Limits(max_connections=self.concurrency),
            )
        return self._client

    def redact(self, text: str) -> str:
        return redact_key(text, self._key)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def transcribe(self, audio: Audio) -> Transcript:
        name, data = await asyncio.to_thread(upload_of, audio)
        fields = {"model": self.model, "response_format": "json"}
        if self.model in WORD_TIMES:
            fields = {"model": self.model, "response_format": "verbose_json", "timestamp_granularities[]": "word"}
        try:
            response = await self._open().post("/audio/transcriptions", data=fields, files={"file": (name, data)})
        except httpx.TimeoutException as exc:
            raise errors.NetworkError(f"proof: timed out: {type(exc).__name__}") from None
        except httpx.ConnectError as exc:
            raise errors.NetworkError(self.redact(f"proof.base_url {self.base_url}: {connect_failure(exc)}")) from None
        except httpx.TransportError as exc:
            raise errors.NetworkError(self.redact(f"proof: connection failed: {type(exc).__name__}")) from None
        if response.status_code != 200:
            raise classify(response.status_code, response.headers, response.content, self.redact)
        return parse_transcript(response, self.base_url)


def upload_of(audio: Audio) -> tuple[str, bytes]:
    """(file name, bytes) of a take as uploaded: FLAC, or Opus when FLAC passes the limit."""
    from ..core import ffmpeg

    pcm_in = ["-f", "s16le", "-ar", str(audio.rate), "-ac", "1", "-i", "pipe:0"]
    flac = ffmpeg.run([*pcm_in, "-c:a", "flac", "-f", "flac", "pipe:1"], "packing a take for proof", audio.pcm)
    if len(flac) <= MAX_UPLOAD:
        return "take.flac", flac
    opus = ffmpeg.run([*pcm_in, "-c:a", "libopus", "-b:a", "24k", "-f", "ogg", "pipe:1"], "packing a take", audio.pcm)
    return "take.ogg", opus


def parse_transcript(response: httpx.Response, base_url: str) -> Transcript:
    """A 200's transcript; anything else there (a login page, a JSON without text) is ProofUnavailable."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    body = response.text
    if kind == "text/plain":
        return Transcript(body.strip())
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        excerpt = re.sub(r"\s+", " ", body[:80]).strip()
        raise ProofUnavailable(f"proof.base_url {base_url}: the answer is not a transcript ({kind}: {excerpt!r})")
    words = data.get("words")
    heard = None
    if isinstance(words, list):
        heard = tuple(
            HeardWord(str(w.get("word", "")), float(w.get("start", 0.0)), float(w.get("end", 0.0)))
            for w in words
            if isinstance(w, dict)
        )
    return Transcript(data["text"], heard)
