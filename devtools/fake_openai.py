"""A loopback OpenAI-compatible speech server, with fault injection, for tests and benchmarks.

It validates requests as the API does (auth, model, voice, both input limits, formats) and answers with OpenAI-shaped
errors; it returns real audio whose duration fits the text (tone bursts, one per word, at about 15 characters a
second) in chunked bodies with no Content-Length, as the API does. Faults on demand: latency, rate limits with
Retry-After, quota exhaustion after N requests, 5xx, bodies cut mid-stream, connection resets.

    python -m devtools.fake_openai --port 8000 --key sk-test --error-rate 0.05
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from narrator.providers.openai import MODEL_VOICES
from narrator.text.chunker import spoken_sentences
from narrator.text.tokens import count_tokens

from . import fake_listener
from .fake_chat import chat_answer
from .tones import CHARS_PER_SECOND, speech_like

__all__ = ["FakeSpeechServer", "Faults", "Record", "speech_like"]

RATE = 24_000
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
Headers = dict[str, str]


@dataclass
class Faults:
    latency: float = 0.0  # seconds from request to the last byte; the status line comes at once
    latency_per_char: float = 0.0  # and this much more per character of input (a longer text takes longer)
    error_rate: float = 0.0  # 500/502/503 answers
    cut_rate: float = 0.0  # half the body, then a clean end of stream: looks like a normal response
    reset_rate: float = 0.0  # the connection is reset before any answer
    runaway_rate: float = 0.0  # runaway generation: the speech, 3 s of silence, the speech again
    requests_per_minute: float | None = None  # enforced with a token bucket; 429 + Retry-After beyond it
    retry_after: float | None = None  # fixed Retry-After for 429s (else the bucket's own wait)
    rate_limit_window: tuple[int, float] | None = None  # (after request n, for s seconds): every answer 429
    quota_after: int | None = None  # after this many successful requests: 429 insufficient_quota
    send_ratelimit_headers: bool = False
    hold: tuple[str, Path] | None = None  # (text, file): a request whose input holds the text is answered once
    hold_seconds: float = 30.0  # the file exists; if it does not within this, a 503 (work done elsewhere meanwhile)
    vary: bool = False  # as a real voice, never the same take twice: a repeated input comes back 6 dB quieter
    bad_take_rate: float = 0.0  # a take that says something else than its input (fake_listener.py)
    bad_kinds: tuple[str, ...] = fake_listener.BAD_KINDS
    bad_words: tuple[int, int] = (4, 12)  # how many words a bad take gets wrong
    slip_rate: float = 0.0  # transcription: a word heard wrong on its own
    # as a real voice: a pause after each sentence, and each sentence at a pace of its own (up to this much faster
    # or slower, fixed by its text), so sentence times cannot be had by sharing a take out by characters
    sentence_pause: float = 0.0
    pace_spread: float = 0.0
    chat: str = "answer"  # how chat completions answer (fake_chat.py): answer, unknown_names, off_schema, ...
    seed: int = 1


@dataclass
class Record:
    time: float
    input: str
    status: int  # 0: connection reset
    fault: str | None = None
    voice: str = ""  # of a 200: what it was asked to speak with
    instructions: str = ""
    speed: float = 1.0
    served: float = 0.0  # of a 200: seconds from its arrival to its last byte (the latency it really had)
    said: str = ""  # of a 200: what the audio says (the input, unless a bad take)
    bad: str | None = None  # of a 200: the kind of bad take, if it was one


@dataclass
class State:
    faults: Faults
    key: str
    records: list[Record] = field(default_factory=list)
    successes: int = 0
    said: dict[str, int] = field(default_factory=dict)  # input -> times spoken
    bucket: float = 0.0
    bucket_time: float = 0.0
    window_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)
    sample: bytes = b""  # a recorded voice to speak with (see recorded); tones when empty
    heard: list[fake_listener.Heard] = field(default_factory=list)  # transcription requests
    chats: list[tuple[int, Any]] = field(default_factory=list)  # chat completions: (status, request)


PARAGRAPH_PAUSE = 0.55  # seconds: a voice's pause at a paragraph break inside one request ("\n\n")


def paragraphs_apart(text: str, speak: Callable[[str], bytes], rate: int = RATE) -> bytes:
    """Each paragraph of ``text`` spoken, with a voice's longer pause between paragraphs."""
    pause = b"\x00\x00" * round(PARAGRAPH_PAUSE * rate)
    return pause.join(pcm for part in text.split("\n\n") if (pcm := speak(part)))


def sentences_apart(text: str, speed: float, pause: float, spread: float, rate: int = RATE) -> bytes:
    """``text`` as tones; with a ``pause`` or a ``spread``, sentence by sentence (as narrator splits them), each
    at its own pace and followed by the pause. Without either, the plain tones (the default fake's sound)."""
    if not (pause or spread):
        return speech_like(text, speed, rate)
    silence = b"\x00\x00" * round(pause * rate)
    pieces = []
    for sentence in spoken_sentences(text):
        pace = 1.0 + spread * ((zlib.crc32(sentence.strip().encode("utf-8")) % 2001) / 1000 - 1)
        pieces.append(speech_like(sentence, speed * pace, rate))
    return silence.join(p for p in pieces if p)


def recorded(sample: bytes, text: str, speed: float = 1.0, rate: int = RATE) -> bytes:
    """Real speech instead of tones: as long a stretch of ``sample`` (16-bit PCM at ``rate``, looped) as the
    text would take to say, from a place chosen by the text. For benchmarks whose cost depends on what the
    audio sounds like (encoders work harder on speech than on pure tones)."""
    length = round(len(text) / CHARS_PER_SECOND / speed * rate) * 2
    if not sample or not length:
        return b""
    start = (zlib.crc32(text.encode("utf-8")) % (len(sample) // 2)) * 2
    return (sample * ((start + length) // len(sample) + 1))[start : start + length]


def streamed_wav(pcm: bytes, rate: int = RATE) -> bytes:
    """A WAV header whose RIFF and data sizes are 0xFFFFFFFF, as the API streams it."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    unknown = struct.pack("<I", 0xFFFFFFFF)
    return b"RIFF" + unknown + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + unknown + pcm


def _error(message: str, err_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers: with Nagle, each body's end reached narrator 28 ms late
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        state = self.server.state
        started = time.monotonic()
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = None
        if self.path.rstrip("/").endswith("/audio/transcriptions"):
            return self._transcribe(state, raw)
        if self.path.rstrip("/").endswith("/chat/completions"):
            return self._chat(state, payload)
        text = payload.get("input", "") if isinstance(payload, dict) else ""
        self.fault: str | None = None
        if (hold := state.faults.hold) and hold[0] in text:
            while not hold[1].exists() and time.monotonic() < started + state.faults.hold_seconds:
                time.sleep(0.05)
            if not hold[1].exists():
                return self._json(503, _error("Held too long.", "server_error", None), text, "held")
        if not self._refused(state, payload, text):
            assert isinstance(payload, dict)
            self._speak(state, payload, text, self.fault, started)

    def _refused(self, state: State, payload: Any, text: str) -> bool:
        """Answer with an error where the request or a fault calls for one; the fault drawn is kept in
        ``self.fault``."""
        if not self.path.rstrip("/").endswith("/audio/speech"):
            self._json(404, _error(f"Invalid URL (POST {self.path})", "invalid_request_error", None), text)
            return True
        if self.headers.get("authorization") != f"Bearer {state.key}":
            shown = (self.headers.get("authorization", "") or "none")[-4:]
            error = _error(f"Incorrect API key provided: sk-...{shown}.", "invalid_request_error", "invalid_api_key")
            self._json(401, error, text)
            return True
        fault = self.fault = self._fault(state)
        if fault == "reset":
            self._reset(text)
            return True
        if fault == "quota":
            message = "You exceeded your current quota, please check your plan and billing details."
            self._json(429, _error(message, "insufficient_quota", "insufficient_quota"), text, fault)
            return True
        if fault and fault.startswith("rate_limit:"):
            wait = float(fault.split(":")[1])
            headers = {"retry-after": f"{wait:g}", "x-ratelimit-remaining-requests": "0"}
            body = _error("Rate limit reached for requests per min.", "requests", "rate_limit_exceeded")
            self._json(429, body, text, "rate_limit", headers)
            return True
        if fault == "server":
            status = state.rng.choice((500, 502, 503))
            body = _error("The server had an error while processing your request.", "server_error", None)
            self._json(status, body, text, fault)
            return True
        problem = self._validate(payload)
        if problem is not None:
            self._json(problem[0], problem[1], text)
            return True
        return False

    def _speak(self, state: State, payload: dict[str, Any], text: str, fault: str | None, started: float) -> None:
        """A 200 whose audio streams over the configured latency, as the real endpoint's does."""
        speed = float(payload.get("speed", 1.0))
        said, bad = text, None
        with state.lock:
            if state.faults.bad_take_rate and state.rng.random() < state.faults.bad_take_rate:  # no draw at 0
                bad = state.rng.choice(state.faults.bad_kinds)
                others = [r.input for r in state.records if r.status == 200 and r.input != text]
                said = fake_listener.bad_take(text, bad, state.rng, state.faults.bad_words, others)
        faults = state.faults
        pcm = paragraphs_apart(
            said,
            lambda part: (
                recorded(state.sample, part, speed)
                if state.sample
                else sentences_apart(part, speed, faults.sentence_pause, faults.pace_spread)
            ),
        )
        if fault == "runaway":
            pcm = pcm + b"\x00\x00" * (3 * RATE) + pcm
        with state.lock:
            state.said[text] = again = state.said.get(text, 0) + 1
        if state.faults.vary and again > 1:
            pcm = (np.frombuffer(pcm, dtype="<i2") // 2).astype("<i2").tobytes()
        fmt = payload.get("response_format", "mp3")
        audio = self._encode(pcm, fmt)
        if fault == "cut":
            audio = audio[: len(audio) // 2]
        with state.lock:
            if fault not in ("cut", "runaway"):
                state.successes += 1
            voice, instructions = str(payload.get("voice")), str(payload.get("instructions") or "")
            record = Record(time.monotonic(), text, 200, fault, voice, instructions, speed, said=said, bad=bad)
            state.records.append(record)
        content_type = {"pcm": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac",
                        "opus": "audio/ogg", "aac": "audio/aac"}[fmt]  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{len(state.records):06d}")
        self.send_header("openai-processing-ms", str(int((time.monotonic() - started) * 1000)))
        self.end_headers()
        # Like the real endpoint, the status line comes at once and the audio streams as it is "made":
        # the pieces are spread over the configured latency, which is the time to the last byte.
        pieces = [audio[i : i + 16384] for i in range(0, len(audio), 16384)] or [b""]
        latency = state.faults.latency + state.faults.latency_per_char * len(text)
        for n, piece in enumerate(pieces, start=1):
            due = started + latency * n / len(pieces)
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            if piece:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        record.served = time.monotonic() - started

    def _transcribe(self, state: State, raw: bytes) -> None:
        """``POST /audio/transcriptions``: the audio uploaded, heard (fake_listener.py)."""
        fields = fake_listener.form_fields(self.headers.get("content-type", ""), raw)
        model = str((fields.get("model") or [""])[0])
        if self.headers.get("authorization") != f"Bearer {state.key}":
            error = _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            return self._answer(401, json.dumps(error).encode(), "application/json", fake_listener.Heard(model, 401))
        refused = fake_listener.problem(fields)
        if refused is not None:
            error = _error(refused[1], "invalid_request_error", "invalid_value", refused[2])
            heard = fake_listener.Heard(model, refused[0])
            return self._answer(refused[0], json.dumps(error).encode(), "application/json", heard)
        from narrator.core import ffmpeg

        pcm = ffmpeg.run(
            ["-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(RATE), "pipe:1"], "hearing", fields["file"][0]
        )
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
        with state.lock:
            rng = random.Random(state.rng.random())
        body, content_type = fake_listener.transcript(samples, RATE, fields, rng, state.faults.slip_rate)
        said = json.loads(body)["text"] if content_type == "application/json" else body.strip()
        heard = fake_listener.Heard(model, 200, said, len(fields["file"][0]))
        self._answer(200, body.encode(), content_type, heard)

    def _chat(self, state: State, payload: Any) -> None:
        """``POST /chat/completions``: structured answers for the cast (fake_chat.py)."""
        if self.headers.get("authorization") != f"Bearer {state.key}":
            status, body = 401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        else:
            status, body = chat_answer(state.faults.chat, payload)
        with state.lock:
            state.chats.append((status, payload))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, data: bytes, content_type: str, heard: fake_listener.Heard) -> None:
        with self.server.state.lock:
            self.server.state.heard.append(heard)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, state: State) -> str | None:
        f = state.faults
        with state.lock:
            now = time.monotonic()
            n = len(state.records)
            if f.quota_after is not None and state.successes >= f.quota_after:
                return "quota"
            if f.rate_limit_window is not None:
                after, seconds = f.rate_limit_window
                if n >= after and state.window_until == 0.0:
                    state.window_until = now + seconds
                if now < state.window_until:
                    return f"rate_limit:{max(0.0, state.window_until - now):.3f}"
            if f.requests_per_minute:
                per_second = f.requests_per_minute / 60.0
                capacity = max(1.0, per_second)  # a second's worth of burst, as the API's limiter allows
                if state.bucket_time == 0.0:
                    state.bucket, state.bucket_time = capacity, now
                state.bucket = min(capacity, state.bucket + (now - state.bucket_time) * per_second)
                state.bucket_time = now
                if state.bucket < 1.0:
                    wait = f.retry_after if f.retry_after is not None else (1.0 - state.bucket) / per_second
                    return f"rate_limit:{wait:.3f}"
                state.bucket -= 1.0
            roll = state.rng.random()
            if roll < f.reset_rate:
                return "reset"
            if roll < f.reset_rate + f.error_rate:
                return "server"
            if roll < f.reset_rate + f.error_rate + f.cut_rate:
                return "cut"
            if roll < f.reset_rate + f.error_rate + f.cut_rate + f.runaway_rate:
                return "runaway"
            return None

    def _validate(self, payload: Any) -> tuple[int, dict[str, Any]] | None:
        if not isinstance(payload, dict):
            return 400, _error("We could not parse the JSON body of your request.", "invalid_request_error", None)
        for name in ("model", "input", "voice"):
            if not payload.get(name):
                return 400, _error(f"Missing required parameter: '{name}'.", "invalid_request_error", None, name)
        model = payload["model"]
        if model not in MODEL_VOICES:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return 404, _error(message, "invalid_request_error", "model_not_found")
        if payload["voice"] not in MODEL_VOICES[model]:
            message = f"Invalid value: '{payload['voice']}'. Supported values are: {', '.join(MODEL_VOICES[model])}."
            return 400, _error(message, "invalid_request_error", "invalid_value", "voice")
        text = payload["input"]
        if len(text) > 4096:
            message = f"Input of {len(text)} characters is over the maximum of 4096 characters."
            return 400, _error(message, "invalid_request_error", "string_above_max_length", "input")
        if model == "gpt-4o-mini-tts":
            tokens = count_tokens(text) + count_tokens(payload.get("instructions") or "")
            if tokens > 2000:
                message = f"Input of {tokens} tokens is over the maximum input limit of 2000 tokens."
                return 400, _error(message, "invalid_request_error", "invalid_value", "input")
        elif payload.get("instructions"):
            message = f"Instructions are not supported for {model}."
            return 400, _error(message, "invalid_request_error", "unsupported_parameter", "instructions")
        if payload.get("response_format", "mp3") not in FORMATS:
            return 400, _error("Invalid response_format.", "invalid_request_error", "invalid_value", "response_format")
        speed = payload.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            return 400, _error("speed must be between 0.25 and 4.0.", "invalid_request_error", "invalid_value", "speed")
        return None

    def _encode(self, pcm: bytes, fmt: str) -> bytes:
        if fmt == "pcm":
            return pcm
        if fmt == "wav":
            return streamed_wav(pcm)
        from narrator.core import ffmpeg

        muxer = {"mp3": "mp3", "flac": "flac", "opus": "ogg", "aac": "adts"}[fmt]
        codec = {"mp3": "libmp3lame", "flac": "flac", "opus": "libopus", "aac": "aac"}[fmt]
        return ffmpeg.run(
            ["-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0", "-c:a", codec, "-f", muxer, "pipe:1"],
            "encoding a fake response",
            pcm,
        )

    def _json(
        self, status: int, body: dict[str, Any], text: str, fault: str | None = None, headers: Headers | None = None
    ) -> None:
        state = self.server.state
        with state.lock:
            state.records.append(Record(time.monotonic(), text, status, fault))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self, text: str) -> None:
        state = self.server.state
        with state.lock:
            state.records.append(Record(time.monotonic(), text, 0, "reset"))
        # SO_LINGER 0: close() sends RST, as a dropped connection does
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections when 32 clients connect at once
    state: State


class FakeSpeechServer:
    """``with FakeSpeechServer(faults=Faults(error_rate=0.05)) as server: ... server.url ...``"""

    def __init__(
        self, key: str = "sk-test-key", faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0,
        *, voice_sample: bytes = b"",
    ):  # fmt: skip
        faults = faults or Faults()
        self.state = State(faults=faults, key=key, rng=random.Random(faults.seed), sample=voice_sample)
        self.httpd = _Server((host, port), _Handler)
        self.httpd.state = self.state
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def records(self) -> list[Record]:
        with self.state.lock:
            return list(self.state.records)

    @property
    def heard(self) -> list[fake_listener.Heard]:
        """The transcription requests, in order."""
        with self.state.lock:
            return list(self.state.heard)

    @property
    def chats(self) -> list[tuple[int, Any]]:
        """The chat completions requests, in order: (status answered, the request's JSON)."""
        with self.state.lock:
            return list(self.state.chats)

    def __enter__(self) -> FakeSpeechServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--key", default="sk-test-key")
    parser.add_argument("--latency", type=float, default=0.0)
    for rate in ("--error-rate", "--cut-rate", "--reset-rate"):
        parser.add_argument(rate, type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None)
    parser.add_argument("--quota-after", type=int, default=None)
    args = parser.parse_args()
    faults = Faults(latency=args.latency, error_rate=args.error_rate, cut_rate=args.cut_rate,
                    reset_rate=args.reset_rate, requests_per_minute=args.rpm, quota_after=args.quota_after)  # fmt: skip
    server = FakeSpeechServer(args.key, faults, port=args.port)
    print(f"fake speech server on {server.url} (key {args.key!r}); Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()


if __name__ == "__main__":
    main()
