"""The exception hierarchy. Every error a user can cause is a NarratorError with an exit code;
the CLI prints its message as one line and exits with that code, never with a traceback."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_CHUNKS_FAILED = 1
EXIT_INVALID = 2
EXIT_FATAL_PROVIDER = 3
EXIT_BUDGET = 4
EXIT_STRICT = 5
EXIT_TOOL = 6


class NarratorError(Exception):
    """Base class: a problem narrator can explain in one line."""

    exit_code = EXIT_INVALID


class JobError(NarratorError):
    """The job spec is invalid. Holds one line per problem, each naming file, line and key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class SourceError(NarratorError):
    """A source document cannot be read (missing, corrupt, unsupported)."""


class ProviderError(NarratorError):
    """A speech provider failed. Subclasses say whether the request may be retried."""

    exit_code = EXIT_FATAL_PROVIDER
    retryable = False
    cause = "error"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class RetryableProviderError(ProviderError):
    """Transient: server trouble, timeouts, connection errors, truncated bodies, rate limits."""

    retryable = True


class RateLimited(RetryableProviderError):
    """HTTP 429 rate_limit_exceeded: slow the whole run down, then try again."""

    cause = "rate_limit"


class ServerError(RetryableProviderError):
    cause = "server"


class NetworkError(RetryableProviderError):
    cause = "network"


class BadAudio(RetryableProviderError):
    """The body was truncated, undecodable, or implausibly long or short for its text."""

    cause = "bad_audio"


class ChunkRejected(ProviderError):
    """The request itself is wrong for this chunk (400, 413, 422): never retried, the chunk fails."""

    cause = "rejected"


class FatalProviderError(ProviderError):
    """Nothing else can succeed (bad key, unknown model, quota): stop the run, keep what is done."""

    cause = "fatal"
    what = "stopped by the provider"
    advice = "fix the cause"  # what to do before rerunning; {key_env}: the variable that holds the key


class AuthError(FatalProviderError):
    cause = "auth"
    what = "the provider refused the API key"
    advice = "check ${key_env} and voice.base_url"


class ModelNotFound(FatalProviderError):
    cause = "model_not_found"
    what = "the provider does not offer this model"
    advice = "fix voice.model"


class QuotaExceeded(FatalProviderError):
    cause = "quota"
    what = "the account is out of quota or credit"
    advice = "add credit or raise the limit"


class Unreachable(FatalProviderError):
    """Nothing answers at the base URL (refused, no such host) and nothing ever has in this run."""

    cause = "unreachable"
    what = "the speech endpoint cannot be reached"
    advice = "check voice.base_url and that the service is running"


class NotSpeech(FatalProviderError):
    """The endpoint answers, but not with audio (a captive portal, a proxy login, a redirect, the wrong URL),
    and no request of this run has had audio from it."""

    cause = "not_speech"
    what = "the endpoint does not answer with speech"
    advice = "check voice.base_url (it must be the API itself, ending in /v1 for most services)"


class BudgetExceeded(NarratorError):
    """Finishing the job would cost more than ``budget_usd``: nothing was sent."""

    exit_code = EXIT_BUDGET


class ToolError(NarratorError):
    """An external tool (ffmpeg) failed, or a take vanished from the cache under the run: not the chunks' fault,
    so not their exit code (the message names the file and ffmpeg's own reason)."""

    exit_code = EXIT_TOOL


class TakeVanished(ToolError):
    """A take the run had stored is gone from the cache (pruned, or its folder emptied, by someone else)."""

    def __init__(self, chunk_id: str | None = None):
        which = f"take for chunk {chunk_id}" if chunk_id else "the first take"
        super().__init__(f"{which} vanished from the cache during the run")


class ReviewUnsettled(NarratorError):
    """``run --strict`` with rejected or stale takes in the review file: nothing is built."""

    exit_code = EXIT_STRICT


class Refused(NarratorError):
    """Several problems found before anything was sent (a catalogue's books): every line, the worst exit code."""

    def __init__(self, found: list[NarratorError]):
        self.found = found
        self.exit_code = max(error.exit_code for error in found)
        super().__init__("\n".join(str(error) for error in found))
