"""The fake server's ear and its bad takes: ``POST /v1/audio/transcriptions`` (OpenAI's multipart API) hears
any audio the fake voice made (devtools/tones.py) and says what it says, and the speech endpoint can be made to
say something else than its input, as real speech models sometimes do.

Transcription: ``file`` (any format ffmpeg reads, at most 25 MB), ``model`` (gpt-4o-mini-transcribe,
gpt-4o-transcribe, whisper-1), ``response_format`` (json, text; verbose_json for whisper-1 only, with
``timestamp_granularities[]=word`` for word times). ``slip_rate``: each word heard may come out wrong on its own
(a letter lost or changed), as transcription does on correct speech.

Bad takes (``Faults.bad_take_rate``, ``bad_kinds``, ``bad_words``): a span of 4-12 words skipped, said twice or
replaced by other words, the take cut short, or another request's text said instead (a caching relay's mix-up).
Each answer's record says what was really said and which fault, if any: a labelled set for the proof-listener.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tones import listen

MODELS = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")
MAX_BYTES = 25 * 1024 * 1024
BAD_KINDS = ("skip", "repeat", "replace", "cut_short", "other")
FILLER = "meadow lantern copper orchard whistle harbour pebble ribbon thistle candle saddle marble".split()


@dataclass
class Heard:
    """One transcription request, as the server answered it."""

    model: str
    status: int
    text: str = ""  # what it said it heard
    bytes: int = 0  # the upload's size


def bad_take(text: str, kind: str, rng: random.Random, span: tuple[int, int], others: list[str]) -> str:
    """``text`` as a speech model that fails in the way ``kind`` names would say it."""
    words = text.split()
    if kind == "other" and others:
        return rng.choice(others)
    n = min(rng.randint(*span), max(1, len(words) - 1))
    if len(words) < 2:
        return " ".join(words + words) if kind == "repeat" else text
    start = rng.randrange(0, max(1, len(words) - n))
    if kind == "skip":
        return " ".join(words[:start] + words[start + n :]) or words[0]
    if kind == "repeat":
        return " ".join(words[: start + n] + words[start : start + n] + words[start + n :])
    if kind == "replace":
        return " ".join(words[:start] + [rng.choice(FILLER) for _ in range(n)] + words[start + n :])
    if kind == "cut_short":
        return " ".join(words[: len(words) - n])
    return text


def slip(word: str, rng: random.Random) -> str:
    """A transcription's isolated mistake on a word said right: a letter lost, changed or doubled."""
    if len(word) < 3:
        return word + "h"
    i = rng.randrange(1, len(word))
    change = rng.choice(("lose", "change", "double"))
    if change == "lose":
        return word[:i] + word[i + 1 :]
    if change == "change":
        return word[:i] + rng.choice("aeioustr") + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def form_fields(content_type: str, body: bytes) -> dict[str, list[Any]]:
    """A multipart/form-data body's fields: text values as str, files as bytes."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, list[Any]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        value: Any = data if part.get_filename() else data.decode("utf-8", "replace")
        fields.setdefault(name, []).append(value)
    return fields


def problem(fields: dict[str, list[Any]]) -> tuple[int, str, str | None] | None:
    """What the API would refuse in these fields: (status, message, param), or None."""
    model = (fields.get("model") or [""])[0]
    if not fields.get("file"):
        return 400, "Missing required parameter: 'file'.", "file"
    if model not in MODELS:
        return 400, f"The model `{model}` does not exist or you do not have access to it.", "model"
    if len(fields["file"][0]) > MAX_BYTES:
        return 413, f"Maximum content size limit ({MAX_BYTES}) exceeded.", "file"
    fmt = (fields.get("response_format") or ["json"])[0]
    if fmt not in ("json", "text", "verbose_json") or (fmt == "verbose_json" and model != "whisper-1"):
        return 400, f"response_format '{fmt}' is not compatible with model '{model}'.", "response_format"
    return None


def transcript(samples: np.ndarray, rate: int, fields: dict[str, list[Any]], rng: random.Random,
               slip_rate: float) -> tuple[str, str]:  # fmt: skip
    """(the body, its content type) for audio that ``listen`` hears."""
    words = [(slip(w, rng) if rng.random() < slip_rate else w, s, e) for w, s, e in listen(samples, rate)]
    text = " ".join(w for w, _, _ in words)
    fmt = (fields.get("response_format") or ["json"])[0]
    if fmt == "text":
        return text + "\n", "text/plain"
    body: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        body.update(task="transcribe", language="english", duration=round(len(samples) / rate, 3))
        if "word" in fields.get("timestamp_granularities[]", []):
            body["words"] = [{"word": w, "start": round(s, 2), "end": round(e, 2)} for w, s, e in words]
    return json.dumps(body), "application/json"
