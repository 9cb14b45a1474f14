"""How each failure is classified: the contract's table, one row each."""

import email.utils
import time

import httpx
import pytest

from narrator.core import errors
from narrator.providers.http import classify, error_details, parse_reset, parse_retry_after


def body(message, err_type=None, code=None):
    import json

    return json.dumps({"error": {"message": message, "type": err_type, "param": None, "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "payload", "headers", "expected"),
    [
        (400, body("Input of 2100 tokens is over the maximum", "invalid_request_error", "invalid_value"), {},
         errors.ChunkRejected),
        (401, body("Incorrect API key provided"), {}, errors.AuthError),
        (403, body("Country not supported"), {}, errors.AuthError),
        (404, body("The model does not exist", code="model_not_found"), {}, errors.ModelNotFound),
        (408, b"timeout", {}, errors.ServerError),
        (409, b"conflict", {}, errors.ServerError),
        (413, b"<html><body>Request Entity Too Large</body></html>", {"content-type": "text/html"},
         errors.ChunkRejected),
        (422, b'{"detail": [{"loc": ["body", "voice"], "msg": "bad"}]}', {}, errors.ChunkRejected),
        (429, body("Rate limit reached", "requests", "rate_limit_exceeded"), {"retry-after": "3"}, errors.RateLimited),
        (429, body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), {},
         errors.QuotaExceeded),
        (429, body("Spend limit", code="project_spend_limit_exceeded"), {}, errors.QuotaExceeded),
        (429, b'{"message": "Your credit balance is too low", "code": 1008}', {}, errors.QuotaExceeded),
        (429, b"Too Many Requests", {}, errors.RateLimited),
        (500, body("The server had an error"), {}, errors.ServerError),
        (502, b"<html>Bad Gateway</html>", {"content-type": "text/html"}, errors.ServerError),
        (503, body("overloaded"), {}, errors.ServerError),
        (504, b"", {}, errors.ServerError),
        (400, body("flaky"), {"x-should-retry": "true"}, errors.ServerError),
        (500, body("do not"), {"x-should-retry": "false"}, errors.ChunkRejected),
    ],
)  # fmt: skip
def test_classification(status, payload, headers, expected):
    error = classify(status, httpx.Headers(headers), payload)
    assert type(error) is expected
    assert isinstance(error, errors.FatalProviderError) == (
        status in (401, 403, 404) or expected is errors.QuotaExceeded
    )
    assert error.retryable == (expected in (errors.ServerError, errors.RateLimited))


def test_messages_are_shown_whatever_the_body_shape():
    assert error_details(body("plain openai"), "application/json")[0] == "plain openai"
    assert error_details(b'{"detail": "fastapi says no"}', "application/json")[0] == "fastapi says no"
    assert error_details(b'{"message": "flat", "code": "x"}', "application/json") == ("flat", None, "x")
    assert error_details(b"<html><h1>502 Bad Gateway</h1></html>", "text/html")[0] == "502 Bad Gateway"
    assert error_details(b"", "")[0] == "(empty body)"


def test_retry_after_forms():
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"retry-after": "600"})) == 600.0  # long waits are waited, not refused
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(httpx.Headers({"retry-after": date}), now=now) <= 31
    assert parse_retry_after(httpx.Headers({})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None


def test_rate_limit_reset_durations():
    assert parse_reset("1s") == 1.0
    assert parse_reset("6m0s") == 360.0
    assert parse_reset("2s81ms") == pytest.approx(2.081)
    assert parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("0.5") == 0.5
    assert parse_reset("") is None and parse_reset("never") is None
