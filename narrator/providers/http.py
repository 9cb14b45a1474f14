"""What an HTTP speech service's answers mean, for any HTTP provider: how long it asks us to wait, which failures
to retry (../shared/api-contract.md), whether a 200's body is audio at all, and reading that audio into a take."""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from ..core import errors
from ..core.audio import PcmStream
from .base import TakeSink

QUOTA_CODES = {
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
}
QUOTA_WORDS = re.compile(r"quota|billing|credit|balance", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
# Content types that are never audio, whatever was asked for: a captive portal, a proxy's login, an API's error
NOT_AUDIO_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")
# What the first bytes of each requested format look like (raw PCM has no signature: judged by what it is not)
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "wav": (b"RIFF",),
    "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3"),
}
_TEXTUAL = re.compile(rb"^\s*(<|\{|\[)")
PCM_RATE = 24_000  # what the endpoint sends unless Content-Type says otherwise
_KEYISH = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,})")


def redact_key(text: str, key: str) -> str:
    """Servers echo keys in errors ("Incorrect API key provided: sk-..."): none reaches a log or file."""
    return _KEYISH.sub("sk-***", text.replace(key, "***") if key else text)


def parse_reset(value: str | None) -> float | None:
    """``x-ratelimit-reset-*`` durations: ``1s``, ``6m0s``, ``2s81ms``, ``20ms``, or plain seconds."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[unit] for n, unit in parts)


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP date. Any length is honoured."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_details(body: bytes, content_type: str) -> tuple[str, str | None, str | None]:
    """(message, type, code) from OpenAI's ``{"error": {...}}``, FastAPI's ``{"detail": ...}``, a flat
    ``{"message", "code"}``, HTML or plain text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or json.dumps(inner)[:300]
            return str(message), _str(inner.get("type")), _str(inner.get("code"))
        if isinstance(inner, str):
            return inner, None, _str(data.get("code"))
        if "detail" in data:
            detail = data["detail"]
            return (detail if isinstance(detail, str) else json.dumps(detail)[:300]), None, None
    if "html" in content_type or text.startswith("<"):
        text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).strip()[:300] or "(empty body)", None, None


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def classify(
    status: int, headers: httpx.Headers, body: bytes, redact: Callable[[str], str] = str
) -> errors.ProviderError:
    """The error class that says what a failed response means: retry, fail the chunk, or stop the run. Its message
    goes through ``redact``: servers echo keys in errors."""
    message, err_type, code = error_details(body, headers.get("content-type", ""))
    retry_after = parse_retry_after(headers)
    text = redact(f"HTTP {status}" + (f" {code}" if code else "") + f": {message}")
    should_retry = headers.get("x-should-retry")
    if 300 <= status < 400:  # httpx follows none: a base URL that redirects is the wrong base URL
        where = headers.get("location", "nowhere")
        return errors.NotSpeech(redact(f"HTTP {status} redirect to {where}"), status=status)
    if status in (401, 403):
        return errors.AuthError(text, status=status)
    if status == 404:
        return errors.ModelNotFound(text, status=status)
    if status == 429:
        if {err_type, code} & QUOTA_CODES or (code != "rate_limit_exceeded" and QUOTA_WORDS.search(message)):
            return errors.QuotaExceeded(text, status=status)
        return errors.RateLimited(text, status=status, retry_after=retry_after)
    if should_retry == "false":
        return errors.ChunkRejected(text, status=status)
    if status in (408, 409) or status >= 500 or should_retry == "true":
        return errors.ServerError(text, status=status, retry_after=retry_after)
    return errors.ChunkRejected(text, status=status)


def not_audio(fmt: str, content_type: str, head: bytes) -> str | None:
    """Why a 200 body is not audio of the requested format (None if it may be): its Content-Type, or where that
    is missing or generic, its first bytes."""
    kind = content_type.split(";")[0].strip().lower()
    excerpt = re.sub(r"\s+", " ", head[:80].decode("utf-8", errors="replace")).strip()
    if kind.startswith(NOT_AUDIO_TYPES):
        return f"not audio: Content-Type {kind}, body {excerpt!r}"
    if kind.startswith("audio/"):
        return None
    signatures = SIGNATURES.get(fmt)
    if (signatures and not head.startswith(signatures)) or (not signatures and _TEXTUAL.match(head)):
        return f"not audio: Content-Type {kind or '(none)'}, body {excerpt!r}"
    return None


def connect_failure(exc: BaseException) -> str:
    """Why a connection could not be made, in a user's words, from the exception chain httpx raised."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "no such host"
        seen = seen.__cause__ or seen.__context__
    return f"could not connect ({exc})"


async def receive_audio(response: httpx.Response, sink: TakeSink, fmt: str, expected: float) -> None:
    """PCM and WAV are written as they arrive; compressed formats (a tenth of the size) are read whole,
    then decoded by ffmpeg straight into the sink. A body that is not audio, or far too long for its text
    (a runaway voice, a server sending junk), is refused before it fills a disk."""
    content_type = response.headers.get("content-type", "")
    most_seconds = 30.0 + 4.0 * expected
    pieces = response.aiter_bytes()
    try:
        if fmt in ("pcm", "wav") or content_type.startswith(("audio/pcm", "audio/l16")):
            rate = int(m.group(1)) if (m := re.search(r"rate=(\d+)", content_type)) else PCM_RATE
            stream: PcmStream | None = None
            async for piece in pieces:
                if stream is None:  # some relays wrap pcm in a WAV header anyway: look at the first bytes
                    if problem := not_audio(fmt, content_type, piece):
                        raise errors.BadAudio(problem)
                    stream = PcmStream(wav=fmt == "wav" or piece[:4] == b"RIFF", rate=rate)
                pcm = stream.feed(piece)
                if pcm:
                    assert stream.rate is not None
                    sink.write(pcm, stream.rate)
                    if sink.samples > most_seconds * stream.rate:
                        raise errors.BadAudio(f"audio too long for its text: over {most_seconds:.0f} s")
            if stream is None:
                raise errors.BadAudio("empty audio body")
            stream.close()
        else:
            await _receive_compressed(pieces, sink, fmt, content_type, most_seconds)
    except (ValueError, errors.ToolError) as exc:
        raise errors.BadAudio(f"undecodable {fmt} body: {exc}") from None


async def _receive_compressed(
    pieces: AsyncIterator[bytes], sink: TakeSink, fmt: str, content_type: str, most_seconds: float
) -> None:
    from ..core import ffmpeg

    body = bytearray()
    async for piece in pieces:
        if not body and (problem := not_audio(fmt, content_type, piece)):
            raise errors.BadAudio(problem)
        body += piece
        if len(body) > most_seconds * 40_000:  # 320 kbps: more than any speech encoding needs
            raise errors.BadAudio(f"audio too long for its text: over {most_seconds:.0f} s")

    def decode() -> None:
        for pcm in ffmpeg.stream_pcm(bytes(body), PCM_RATE, fmt):
            sink.write(pcm, PCM_RATE)

    await asyncio.to_thread(decode)
