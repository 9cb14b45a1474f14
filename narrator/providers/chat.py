"""Chat completions with structured output: ``POST {base_url}/chat/completions`` with a JSON schema for the
answer (``response_format: json_schema``, strict), through OpenAI or the relay that serves the speech. Used by the
cast's ``attribution: model``. A 429, a 5xx or a broken connection is tried again (tenacity, by class, as speech
is); any other 4xx, a refusal, or an answer that is not JSON ends the request: the caller keeps what it had."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from .http import redact_key

# List prices per million tokens (../shared/api-contract.md): the common cheap model; others are not priced here
PRICES = {"gpt-4o-mini": (0.15, 0.60)}


class ChatFailed(Exception):
    """The endpoint gave no usable answer: why, in one line (the key never in it)."""


class _Again(Exception):
    """A failure worth another try (429, 5xx, a connection that broke)."""


@dataclass(frozen=True)
class Answer:
    data: Any  # the parsed JSON the schema describes (the caller checks it against the schema)
    prompt_tokens: int
    completion_tokens: int

    def cost(self, model: str) -> float:
        per_in, per_out = PRICES.get(model, (0.0, 0.0))
        return (self.prompt_tokens * per_in + self.completion_tokens * per_out) / 1e6


def ask(
    base_url: str,
    key: str,
    model: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    *,
    name: str = "answer",
    attempts: int = 4,
    timeout: float = 120.0,
) -> Answer:
    """One structured answer. Raises ChatFailed."""
    body = {
        "model": model,
        "messages": messages,
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {key}"}
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.5, max=8),
        retry=tenacity.retry_if_exception_type(_Again),
        reraise=True,
    )
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout) as client:
            for attempt in retrying:
                with attempt:
                    return _answer(client.post("/chat/completions", json=body))
    except _Again as exc:
        raise ChatFailed(redact_key(f"no answer after {attempts} tries ({exc})", key)) from None
    except httpx.HTTPError as exc:
        raise ChatFailed(redact_key(f"{type(exc).__name__}: {exc}", key)) from None
    raise ChatFailed("no answer")  # pragma: no cover - the loop returns or raises


def _answer(response: httpx.Response) -> Answer:
    if response.status_code == 429 or response.status_code >= 500:
        raise _Again(f"HTTP {response.status_code}")
    if response.status_code != 200:
        raise ChatFailed(f"HTTP {response.status_code}: {_message(response)}")
    try:
        body = response.json()
        message = body["choices"][0]["message"]
        if message.get("refusal"):
            raise ChatFailed(f"the model refused: {str(message['refusal'])[:120]}")
        data = json.loads(message["content"])
        usage = body.get("usage") or {}
        return Answer(data, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatFailed(f"an answer that is not the JSON asked for ({type(exc).__name__})") from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:160]
    except (ValueError, KeyError, TypeError):
        return response.text[:160]
