"""Takes made visible in the cache off the synthesis workers' path (scheduler.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Commits:
    """Takes made visible in the cache off the workers' path, on one thread of their own (fsync must not delay a
    worker's next request): every commit started, and the one in flight for each key."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cache-commit")
        self.started: list[asyncio.Task[None]] = []
        self.in_flight: dict[str, asyncio.Task[None]] = {}

    def start(self, key: str, commit: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(commit)
        self.started.append(task)
        self.in_flight[key] = task

    def pop(self, key: str) -> asyncio.Task[None] | None:
        return self.in_flight.pop(key, None)

    async def run(self, write: Callable[[], object]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, write)

    async def drain(self) -> None:
        await asyncio.gather(*self.started)
        self.pool.shutdown()
