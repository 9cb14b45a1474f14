"""The output folder, as narrator keeps it: its own files live in ``.narrator/`` inside it (the scratch space of a
build, the name of the job that owns the folder, the lock of the run using it), so a run writes nothing outside
``output.dir`` and ``cache``, and deletes nothing it did not write.

One job per output folder (a job is the absolute path of its file: editing it keeps it the same job), and one
run of it at a time: the lock is an OS file lock, so a run killed with SIGKILL leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from types import TracebackType

from .errors import JobError

SCRATCH = ".narrator"


def work_dir(out_dir: Path) -> Path:
    """Where a build and the providers keep temporary files (emptied by each build)."""
    return out_dir / SCRATCH / "work"


def read_through_dir(out_dir: Path) -> Path:
    """Where a run keeps its local copies of the takes of a cache on object storage (remote.py)."""
    return out_dir / SCRATCH / "cache"


def segments_dir(out_dir: Path) -> Path:
    """Where the whole-book file's per-chapter segments are kept between runs (segments.py)."""
    return out_dir / SCRATCH / "segments"


class Workspace:
    """Held for a whole run: ``with Workspace(out_dir, job_path):``."""

    def __init__(self, out_dir: Path, job_path: Path):
        self.out_dir = out_dir
        self.job = str(job_path.resolve())
        self.root = out_dir / SCRATCH
        self._lock: int | None = None

    def __enter__(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        owner_file = self.root / "job"
        with contextlib.suppress(OSError):
            owner = owner_file.read_text(encoding="utf-8").strip()
            if owner and owner != self.job:
                self._release()
                advice = f"give each job its own output folder (or delete {owner_file} if that job is gone)"
                raise JobError(
                    [f"{self.job}: output.dir: {self.out_dir} holds the book of another job ({owner}); {advice}"]
                )
        owner_file.write_text(self.job + "\n", encoding="utf-8")
        shutil.rmtree(work_dir(self.out_dir), ignore_errors=True)  # what a killed run left
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._release()

    def _take_lock(self) -> None:
        path = self.root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # no flock (Windows): no lock
            self._lock = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", errors="replace").strip() or "unknown"
            os.close(fd)
            raise JobError(
                [f"{self.job}: another run (PID {holder}) is using {self.out_dir}; wait for it to finish or stop it"]
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None
