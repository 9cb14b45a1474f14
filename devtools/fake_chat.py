"""The fake's chat completions (``POST /v1/chat/completions``, structured output), for the cast's
``attribution: model``: it reads the JSON narrator sends (the characters and the quotations) and answers by a rule
a test can foresee, or misbehaves as ``Faults.chat`` says:

- ``answer``: every quotation said by the last character listed (a model that disagrees with the text's rules, so a
  test can tell whose answer the cast holds);
- ``unknown_names``: every quotation said by somebody the cast does not know;
- ``off_schema``: a JSON answer of another shape;
- ``refuse``: a refusal;
- ``down``: 503 for every request.
"""

from __future__ import annotations

import json
from typing import Any

CHAT_MODES = ("answer", "unknown_names", "off_schema", "refuse", "down")


def chat_answer(mode: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """(status, body) for one request."""
    if mode == "down":
        return 503, {"error": {"message": "The server is overloaded.", "type": "server_error", "code": None}}
    try:
        asked = json.loads(payload["messages"][-1]["content"])
        schema = payload["response_format"]["json_schema"]
        assert payload["response_format"]["type"] == "json_schema" and schema["strict"] is True
    except (KeyError, TypeError, ValueError, AssertionError):
        error = {"message": "Invalid request: structured output expected.", "type": "invalid_request_error"}
        return 400, {"error": {**error, "code": None}}
    characters = [c["name"] for c in asked.get("characters", [])] or ["narrator"]
    if mode == "off_schema":
        content = json.dumps({"answers": "all of them"})
    elif mode == "refuse":
        return 200, _completion(None, refusal="I can't help with that.")
    else:
        speaker = "Nobody Known" if mode == "unknown_names" else characters[-1]
        content = json.dumps({"quotations": [{"id": q["id"], "speaker": speaker} for q in asked["quotations"]]})
    return 200, _completion(content)


def _completion(content: str | None, refusal: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    usage = {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"index": 0, "message": message}],
            "usage": usage}  # fmt: skip
