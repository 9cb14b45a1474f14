"""ffmpeg from PyPI (imageio-ffmpeg): encode, decode and read back metadata. There is no ffprobe."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from .audio import Audio
from .errors import ToolError


@lru_cache(maxsize=1)
def executable() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


_priority = threading.local()
LOWEST = 19


@contextlib.contextmanager
def background(niceness: int = LOWEST) -> Iterator[None]:
    """ffmpeg processes started by this thread inside the block run at a lower CPU priority (never raised by a
    nested block). The back end runs while synthesis still does, and must not slow it: under CFS a nice-0
    process gets about 70 times the CPU of a nice-19 one, so the back end takes what synthesis leaves idle (the
    bench's takes run: synthesis 48.0 s against its bound of 26.9 with the back end at nice 5, 34.5 s at 19; also
    leaving synthesis a core of its own measured 43.5 s, no better, and was dropped). Alone on the machine,
    niceness changes nothing."""
    before = getattr(_priority, "niceness", 0)
    _priority.niceness = max(before, niceness)
    try:
        yield
    finally:
        _priority.niceness = before


_running: weakref.WeakSet[subprocess.Popen[Any]] = weakref.WeakSet()
_stopped = threading.Event()
_start_lock = threading.Lock()


def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ffmpeg, unless ``stop_all`` was called: a stopping run starts nothing new."""
    with _start_lock:
        if _stopped.is_set():
            raise ToolError("stopped: no new ffmpeg process is started")
        proc = subprocess.Popen(command, **kwargs)
        _running.add(proc)
    niceness = getattr(_priority, "niceness", 0)
    if niceness and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):  # it may have finished already
            os.setpriority(os.PRIO_PROCESS, proc.pid, niceness)
    return proc


def stop_all() -> None:
    """Kill every ffmpeg this process started and start no more (narrator was told to stop). A signal sent to
    narrator alone does not reach them, and they would go on encoding with nobody waiting for the result.
    Every file they were writing is a temporary one: nothing finished is lost."""
    with _start_lock:
        _stopped.set()
        for proc in list(_running):
            with contextlib.suppress(OSError):
                proc.kill()


def run(args: list[str], what: str, stdin: bytes | Sequence[Path] | None = None) -> bytes:
    """ffmpeg with ``args``; ``stdin``: bytes, or files whose bytes are sent one after the other, a piece at a
    time (memory stays flat however long they are)."""
    command = [executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    if stdin is not None:
        command.remove("-nostdin")
    pipe = subprocess.PIPE if stdin is not None else subprocess.DEVNULL
    proc = popen(command, stdin=pipe, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if isinstance(stdin, bytes) or stdin is None:
        out, err = proc.communicate(stdin)
    else:  # communicate() would close stdin: the output is read on threads while the files are fed
        with ThreadPoolExecutor(2) as readers:
            out_read = readers.submit(proc.stdout.read)  # type: ignore[union-attr]
            err_read = readers.submit(proc.stderr.read)  # type: ignore[union-attr]
            try:
                _feed(proc, _pieces_of(stdin))
            except ToolError:  # a file could not be read: ffmpeg must not finish on half its input
                proc.kill()
                raise
            finally:
                out, err = out_read.result(), err_read.result()
                proc.wait()
    if proc.returncode != 0:
        lines = err.decode("utf-8", errors="replace").strip().splitlines()
        raise ToolError(f"ffmpeg failed while {what}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return bytes(out)


def stream_pcm(
    source: Path | bytes, rate: int, input_format: str | None = None, block: int = 1 << 16
) -> Iterator[bytes]:
    """Decode any audio ffmpeg reads to 16-bit mono PCM at ``rate``, in pieces of ``block`` bytes (always
    whole samples): memory stays flat whatever the length. Pass ``input_format`` (mp3, ...) for bytes:
    without ffprobe, guessing the format of a pipe is unreliable."""
    head = ["-f", input_format] if input_format else []
    feed = source if isinstance(source, bytes) else None
    command = [
        executable(),
        "-hide_banner",
        "-loglevel",
        "error",
        *head,
        "-i",
        "pipe:0" if feed is not None else str(source),
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "pipe:1",
    ]
    stdin = subprocess.PIPE if feed is not None else subprocess.DEVNULL
    proc = popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    # stderr and stdin on threads of their own: ffmpeg blocks on a full pipe, and so would we
    readers = [threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)]  # type: ignore[union-attr]
    if feed is not None:
        readers.append(threading.Thread(target=_feed, args=(proc, [feed]), daemon=True))
    for thread in readers:
        thread.start()
    try:
        while piece := proc.stdout.read(block - block % 2):
            yield piece
    finally:
        proc.stdout.close()
        proc.wait()
        for thread in readers:
            thread.join()
    if proc.returncode != 0:
        lines = b"".join(errors).decode("utf-8", errors="replace").strip().splitlines()
        raise ToolError(f"ffmpeg failed while decoding: {lines[-1] if lines else f'exit {proc.returncode}'}")


def _pieces_of(files: Sequence[Path]) -> Iterator[bytes]:
    """The files' bytes, a megabyte at a time; a file that cannot be read is a ToolError naming it."""
    for path in files:
        try:
            f = path.open("rb")
        except OSError as exc:
            raise ToolError(f"cannot read {path}: {exc.strerror}") from None
        with f:
            while piece := f.read(1 << 20):
                yield piece


def _feed(proc: subprocess.Popen[bytes], pieces: Iterable[bytes]) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # ffmpeg gave up on bad input: its stderr says why
        for piece in pieces:
            proc.stdin.write(piece)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()


def decode(source: Path | bytes, rate: int, input_format: str | None = None) -> Audio:
    """The whole of ``source`` as PCM in memory (see stream_pcm)."""
    return Audio(b"".join(stream_pcm(source, rate, input_format)), rate)
