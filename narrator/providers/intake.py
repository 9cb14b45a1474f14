"""Intake processes: an HTTP provider's takes received, checked, hashed and written in processes of their own, so
that the run's event loop only schedules.

Why (bench/intake.py, 2 cores, the fake at 0.4 s a request): one event loop takes in at most ~90 MB of PCM a
second through httpx, every 16 KB piece parsed by h11 and passed up seven async generators; in a run, whose back
end holds the GIL from its own threads, 69 MB/s. Takes of 30 s at concurrency 32 offer 120 MB/s.

The protocol is JSON lines over the child's stdin and stdout. The parent's first line says what provider to make
(its kind and ``voice:`` settings, as the job gave them; the key stays in the environment, which the child
inherits); then one line per request (``id``, ``text``, ``path``: where the take will be, and what this run has
learnt of the server) or per cancellation. The child answers with the request's events as they happen, then
``done`` (the take, whole, under a temporary name beside its place: the parent commits it) or ``error`` (the
ProviderError, by class). A request's text always goes to the same child (by a hash of it), so that what a
provider remembers of a text (a take too short three times alike is the voice's pace) holds across retries.

A child is ``python -c "from narrator.providers.intake import serve; serve()"``, started by IntakeProcesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import traceback
import zlib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..core import errors
from ..core.takefile import HandedTake, TakeFile
from .base import Events, ProviderContext

STREAM_LIMIT = 1 << 20  # bytes a line may hold: a request's text is at most 4096 characters


class IntakeProcesses:
    """The parent's side: ``processes`` children, started on first use, each taking its share of the requests."""

    def __init__(self, kind: str, settings: Mapping[str, Any], concurrency: int, processes: int):
        share = -(-concurrency // processes)
        self.setup = {"kind": kind, "settings": dict(settings), "concurrency": share}
        self.children: list[_Child | None] = [None] * processes
        self._starting = asyncio.Lock()

    async def synthesize(self, text: str, take: TakeFile, events: Events, learnt: Mapping[str, bool]) -> None:
        """``take`` is received by a child and handed over here, whole, to commit or discard."""
        child = await self._child(zlib.crc32(text.encode("utf-8")) % len(self.children))
        take.adopt(await child.request({"text": text, "path": str(take.path), **learnt}, events))

    async def _child(self, index: int) -> _Child:
        async with self._starting:  # all at once on the first request (each takes ~0.4 s to import narrator)
            ended = [i for i, child in enumerate(self.children) if child is None or child.ended]
            started = await asyncio.gather(*(_Child.start(self.setup) for _ in ended))
            for i, fresh in zip(ended, started, strict=True):
                self.children[i] = fresh
            chosen = self.children[index]
            assert chosen is not None
            return chosen

    async def aclose(self) -> None:
        children, self.children = self.children, [None] * len(self.children)
        await asyncio.gather(*(c.close() for c in children if c is not None))


class _Child:
    """One intake process, and the requests it has not answered yet."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.waiting: dict[int, tuple[asyncio.Future[HandedTake], Events]] = {}
        self.next_id = 0
        self.ended = False
        self.reading = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, setup: Mapping[str, Any]) -> _Child:
        pipe = asyncio.subprocess.PIPE
        command = (sys.executable, "-c", "from narrator.providers.intake import serve; serve()")
        # a session of its own: a Ctrl-C at the terminal is the parent's to handle (it closes the child's stdin),
        # even while the child still imports and cannot yet ignore it
        process = await asyncio.create_subprocess_exec(
            *command, stdin=pipe, stdout=pipe, limit=STREAM_LIMIT, start_new_session=True
        )
        child = cls(process)
        child._send(setup)
        return child

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode("utf-8") + b"\n")

    async def request(self, message: dict[str, Any], events: Events) -> HandedTake:
        if self.ended:
            raise errors.NetworkError("the intake process had ended before the request was sent")
        ident, self.next_id = self.next_id, self.next_id + 1
        answer: asyncio.Future[HandedTake] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = (answer, events)
        self._send({"id": ident, **message})
        try:
            return await answer
        except asyncio.CancelledError:
            if not self.ended:
                self._send({"id": ident, "cancel": True})
            raise
        finally:
            self.waiting.pop(ident, None)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            async for line in self.process.stdout:
                self._heard(json.loads(line))
        finally:
            self.ended = True
            code = await self.process.wait()
            for answer, _ in self.waiting.values():  # retried by the scheduler, in a child started anew
                if not answer.done():
                    answer.set_exception(errors.NetworkError(f"the intake process ended (exit code {code})"))

    def _heard(self, message: dict[str, Any]) -> None:
        waiting = self.waiting.get(message["id"])
        if waiting is None:  # cancelled here after the child had finished it: nobody will commit its file
            if "done" in message:
                with contextlib.suppress(OSError):
                    os.unlink(message["done"]["tmp"])
            return
        answer, events = waiting
        if "event" in message:
            _tell(events, message)
        elif answer.done():
            return
        elif "done" in message:
            answer.set_result(HandedTake(**message["done"]))
        elif "error" in message:
            answer.set_exception(_rebuilt(message["error"]))
        else:
            answer.set_exception(RuntimeError(f"the intake process failed:\n{message['crash']}"))

    async def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.process.stdin.close()
        await self.reading


def _tell(events: Events, message: Mapping[str, Any]) -> None:
    if message["event"] == "accepted":
        events.accepted()
    elif message["event"] == "response":
        events.response(message["status"])
    else:
        events.slow_down(message["seconds"], message["cause"])


def _rebuilt(error: Mapping[str, Any]) -> errors.ProviderError:
    kind = getattr(errors, error["class"], None)
    if not (isinstance(kind, type) and issubclass(kind, errors.ProviderError)):
        kind = errors.ProviderError
    return kind(error["message"], status=error["status"], retry_after=error["retry_after"])


# --- the child ---


class _ChildEvents:
    """A request's events, sent to the parent as they happen."""

    def __init__(self, ident: int):
        self.ident = ident

    def accepted(self) -> None:
        _answer({"id": self.ident, "event": "accepted"})

    def slow_down(self, seconds: float, cause: str) -> None:
        _answer({"id": self.ident, "event": "slow_down", "seconds": seconds, "cause": cause})

    def response(self, status: str) -> None:
        _answer({"id": self.ident, "event": "response", "status": status})


def _answer(message: Mapping[str, Any]) -> None:
    sys.stdout.buffer.write(json.dumps(message).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


async def _serve() -> None:
    from . import create_provider, provider_kind

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), sys.stdin)
    setup = json.loads(await reader.readline())
    settings = provider_kind(setup["kind"]).settings.model_validate({**setup["settings"], "intake_processes": 0})
    provider = create_provider(settings, ProviderContext(setup["concurrency"], Path.cwd()))
    requests: dict[int, asyncio.Task[None]] = {}
    while line := await reader.readline():
        message = json.loads(line)
        if message.get("cancel"):
            if (task := requests.get(message["id"])) is not None:
                task.cancel()
            continue
        ident: int = message["id"]
        task = requests[ident] = asyncio.create_task(_receive(provider, message))
        task.add_done_callback(functools.partial(_forget, requests, ident))
    for task in requests.values():  # the parent is done with us (or gone): what is left is nobody's
        task.cancel()
    await asyncio.gather(*requests.values(), return_exceptions=True)
    await provider.aclose()


def _forget(requests: dict[int, asyncio.Task[None]], ident: int, _: object) -> None:
    requests.pop(ident, None)


async def _receive(provider: Any, message: Mapping[str, Any]) -> None:
    ident = message["id"]
    take = TakeFile(Path(message["path"]))
    provider.learn(answered=message.get("answered", False), had_audio=message.get("had_audio", False))
    try:
        await provider.synthesize(message["text"], take, _ChildEvents(ident))
        _answer({"id": ident, "done": asdict(take.hand_over())})
    except errors.ProviderError as exc:
        take.discard()
        error = {"class": type(exc).__name__, "message": str(exc), "status": exc.status}
        _answer({"id": ident, "error": {**error, "retry_after": exc.retry_after}})
    except asyncio.CancelledError:
        take.discard()
    except Exception:  # a bug: the parent raises it
        take.discard()
        _answer({"id": ident, "crash": traceback.format_exc()})


def serve() -> None:
    """An intake process's life: requests from stdin until it closes."""
    logging.getLogger("narrator").setLevel(logging.ERROR)  # the parent warned of the settings already
    asyncio.run(_serve())
