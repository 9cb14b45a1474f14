"""``cast.attribution: model``: each chapter's quotations, with the paragraphs around them, sent to the relay's
chat completions with a JSON schema for the answer (providers/chat.py); each answer checked against the chapter's
quotations and the characters (a name the cast does not know, or a quotation it was not asked about, is not
taken). Answers are cached by what was asked, in the cache folder (a rerun asks nothing). A chapter whose request
fails, or whose answer does not match the schema, keeps the text's attribution, and the cast says so."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.audio import atomic_write
from ..core.workspace import SCRATCH
from ..providers.chat import PRICES, ChatFailed, ask
from ..text.dialogue.attribution import Cast
from ..text.dialogue.quotes import Quotation
from ..text.document import Block
from ..text.tokens import count_tokens
from .spec import Job

SYSTEM = (
    "You attribute dialogue in a novel. For each quotation (by id) name who says it: one of the characters "
    'listed (by the name given), or "narrator" when nobody in the story says it (a sign, a title). Use the '
    "context: speech tags, pronouns, who is addressed, turn-taking."
)
KEPT = "the text's attribution stands"
ANSWER_TOKENS = 12  # an answer's tokens per quotation (its id and a name, in JSON)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "quotations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "speaker": {"type": "string"}},
                "required": ["id", "speaker"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["quotations"],
    "additionalProperties": False,
}


@dataclass
class ModelLedger:
    """What asking the model cost and said, for the cast command's summary."""

    asked: int = 0
    cached: int = 0
    cost_usd: float = 0.0
    notes: list[str] = field(default_factory=list)


def _cache_dir(job: Job) -> Path:
    root = job.cache if isinstance(job.cache, Path) else job.output.dir / SCRATCH
    return root / "attributions"


@dataclass(frozen=True)
class ModelRequest:
    messages: list[dict[str, str]]
    path: Path  # where its answer is cached: named by what was asked


def chapter_request(job: Job, blocks: Sequence[Block], quotations: Sequence[Quotation], cast: Cast) -> ModelRequest:
    """What one chapter asks of the model: its quotations with the paragraphs around them, and the characters
    known so far."""
    spec = job.cast
    assert spec is not None
    names = [{"name": c.name, "aliases": c.aliases} for c in cast.characters]
    asked = [{"id": q.id, "quotation": _quoted(blocks, q), "context": _context(blocks, q)} for q in quotations]
    user = json.dumps({"characters": names, "quotations": asked}, ensure_ascii=False)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    digest = hashlib.sha256(json.dumps([spec.model, messages, SCHEMA]).encode()).hexdigest()
    return ModelRequest(messages, _cache_dir(job) / f"{digest}.json")


def model_speakers(
    job: Job, chapter: int, blocks: Sequence[Block], quotations: Sequence[Quotation], cast: Cast, ledger: ModelLedger
) -> dict[str, str]:
    """Quotation id -> speaker, as the model answers for one chapter (only answers that check out); {} when the
    model could not be asked or answered off the schema (a note in the ledger says so)."""
    spec, voice = job.cast, job.voice
    assert spec is not None
    base_url = spec.base_url or getattr(voice, "base_url", None) or os.environ.get("OPENAI_BASE_URL")
    key_env = str(spec.api_key_env or getattr(voice, "api_key_env", None) or "OPENAI_API_KEY")
    request = chapter_request(job, blocks, quotations, cast)
    path = request.path
    data: Any = None
    if path.is_file():
        data, ledger.cached = json.loads(path.read_text(encoding="utf-8")), ledger.cached + 1
    else:
        url = base_url or "https://api.openai.com/v1"
        try:
            answer = ask(url, os.environ.get(key_env, ""), spec.model, request.messages, SCHEMA)
        except ChatFailed as exc:
            ledger.notes.append(f"chapter {chapter + 1}: no answer from the model ({exc}); {KEPT}")
            return {}
        data, ledger.asked = answer.data, ledger.asked + 1
        ledger.cost_usd += answer.cost(spec.model)
    speakers = _checked(data, {q.id for q in quotations}, cast)
    if speakers is None:
        ledger.notes.append(f"chapter {chapter + 1}: the model's answer does not match the schema; {KEPT}")
        return {}
    if not path.is_file():
        atomic_write(path, json.dumps(data).encode("utf-8"))
    return speakers


def estimated_cost(job: Job, requests: Sequence[ModelRequest], quotations: int) -> float:
    """What asking costs, before asking: the prompt's tokens, and about a dozen a quotation in the answer."""
    spec = job.cast
    assert spec is not None
    per_in, per_out = PRICES.get(spec.model, (0.0, 0.0))
    prompt = sum(count_tokens(m["content"]) + 4 for r in requests for m in r.messages)
    return (prompt * per_in + ANSWER_TOKENS * quotations * per_out) / 1e6


def _quoted(blocks: Sequence[Block], q: Quotation) -> str:
    return " … ".join(blocks[b].text[s:e] for b, (s, e) in q.parts)


def _context(blocks: Sequence[Block], q: Quotation) -> str:
    """The quotation's paragraphs and the one before: where its tags and its conversation are."""
    first, last = q.parts[0][0], q.parts[-1][0]
    return "\n\n".join(b.text for b in blocks[max(0, first - 1) : last + 1])


def _checked(data: Any, ids: set[str], cast: Cast) -> dict[str, str] | None:
    """The answer's speakers that name a known character (or the narrator) for a quotation asked about; None when
    the answer is not the schema's shape."""
    if not isinstance(data, dict) or not isinstance(data.get("quotations"), list):
        return None
    speakers: dict[str, str] = {}
    for item in data["quotations"]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str)
            or not isinstance(item.get("speaker"), str)
        ):
            return None
        if item["id"] not in ids:
            continue
        if item["speaker"].strip().lower() == "narrator":
            speakers[item["id"]] = "narrator"
        elif (character := cast.find(item["speaker"])) is not None:
            speakers[item["id"]] = character.name
    return speakers
