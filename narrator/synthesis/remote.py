"""The take cache on object storage: ``cache: s3://bucket/prefix`` (or any fsspec URL: ``gs://``, ``az://``,
``file://``), through fsspec and s3fs. Optional (``pip install 'narrator[s3]'``): imported only when a job names
such a cache. Credentials and endpoint come from the environment and config files as boto (or the protocol's
library) reads them: ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, profiles. narrator never writes them anywhere.

Each take is one object, ``<url>/takes/<key[:2]>/<key>/<rate>-<sha256 of its samples>.flac``: FLAC, lossless, and
named by what it holds. So an object is never replaced by other content (two runners that store the same take at
once write the same bytes under one name, or two names), and one that does not decode to the samples its name
promises (damaged, cut short, altered) is detected on reading, removed and never used: the take is made again.
Storing a take is one PUT (measured against moto: a temporary name and a move cost nine requests a take).
Runs read through a local folder (TakeCache, inside ``output.dir``) and store each take they make.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import errors, ffmpeg
from ..core.audio import atomic_wav, atomic_write, wav_layout

SCHEMES_NEEDING = {"s3": "s3fs", "gs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_remote(location: str | Path) -> bool:
    return isinstance(location, str) and "://" in location


@dataclass(frozen=True)
class RemoteTake:
    key: str
    rate: int
    digest: str  # sha256 of its samples (16-bit mono PCM)
    path: str  # the object, in the file system's own terms
    size: int
    modified: float | None  # seconds since the epoch, when the store says


class RemoteStore:
    """The objects under one URL. Listing once (one ``find``) answers ``has`` for a whole book."""

    def __init__(self, url: str):
        scheme = url.split("://", 1)[0]
        try:
            import fsspec
        except ImportError:
            raise errors.JobError([f"cache: {url} needs the s3 extra: pip install 'narrator[s3]'"]) from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            needs = SCHEMES_NEEDING.get(scheme, f"an fsspec implementation for {scheme}://")
            raise errors.JobError([f"cache: {url}: {needs} is not installed ({exc})"]) from None
        self.url = url
        self.root = root.rstrip("/")
        self._listing: dict[str, list[RemoteTake]] | None = None
        self._lock = threading.Lock()

    def _parse(self, path: str, info: dict[str, Any]) -> RemoteTake | None:
        parts = path.rsplit("/", 3)
        if len(parts) < 4 or not parts[-1].endswith(".flac") or "-" not in parts[-1]:
            return None
        rate, _, digest = parts[-1][: -len(".flac")].partition("-")
        if not rate.isdigit() or len(digest) != 64:
            return None
        modified: Any = info.get("LastModified") or info.get("mtime") or info.get("created")
        if hasattr(modified, "timestamp"):  # S3 says a datetime; local and others, seconds
            modified = modified.timestamp()
        return RemoteTake(
            parts[-2],
            int(rate),
            digest,
            path,
            int(info.get("size") or 0),
            float(modified) if modified is not None else None,
        )

    def takes(self, refresh: bool = False) -> dict[str, list[RemoteTake]]:
        """Key -> its objects (usually one), listed once and kept up to date by this process's own stores."""
        with self._lock:
            if self._listing is None or refresh:
                listing: dict[str, list[RemoteTake]] = {}
                try:
                    found = self.fs.find(f"{self.root}/takes", detail=True)
                except FileNotFoundError:  # no bucket (object stores), or no folder yet (file://)
                    if not self.url.startswith("file://"):
                        raise errors.JobError([f"cache: {self.url}: not found: does the bucket exist?"]) from None
                    found = {}
                except Exception as exc:  # credentials, endpoint, permissions: the library's own words
                    first = (str(exc).splitlines() or [type(exc).__name__])[0]
                    raise errors.JobError([f"cache: {self.url}: cannot list it: {first}"]) from None
                for path, info in found.items():
                    take = self._parse(path, info)
                    if take is not None:
                        listing.setdefault(take.key, []).append(take)
                self._listing = listing
            return self._listing

    def has(self, key: str) -> bool:
        return bool(self.takes().get(key))

    def fetch(self, key: str, wav: Path) -> bool:
        """Write the take to ``wav`` (with its hash beside it) from the first of its objects that decodes to the
        samples its name promises; an object that does not is removed. False when none does."""
        for take in sorted(self.takes().get(key, []), key=lambda t: t.path):
            try:
                data = self.fs.cat_file(take.path)
                pcm = b"".join(ffmpeg.stream_pcm(data, take.rate, "flac"))
            except (OSError, errors.ToolError):
                pcm = b""
            if pcm and hashlib.sha256(pcm).hexdigest() == take.digest:
                with atomic_wav(wav, take.rate) as writer:
                    writer.write(pcm)
                atomic_write(wav.with_suffix(".sha256"), take.digest.encode("ascii"))
                return True
            self.remove(take)  # damaged: never used, and made again by the run that needs it
        return False

    def store(self, key: str, wav: Path, digest: str) -> None:
        """The take at ``wav`` (whose samples hash to ``digest``) as FLAC, unless the listing has it already. An
        object store's PUT is atomic (one request a take); a file system's write goes to a temporary name first
        and is moved into place, so a reader never lists half an object."""
        rate = wav_layout(wav).rate
        final = f"{self.root}/takes/{key[:2]}/{key}/{rate}-{digest}.flac"
        if any(t.path == final for t in self.takes().get(key, [])):
            return
        data = ffmpeg.run(["-i", str(wav), "-c:a", "flac", "-f", "flac", "pipe:1"], "compressing a take to FLAC")
        if self.url.startswith("file://"):
            temporary = f"{self.root}/incoming/{key}.{uuid.uuid4().hex}.tmp"
            self.fs.pipe_file(temporary, data)
            self.fs.mv(temporary, final)
        else:
            self.fs.pipe_file(final, data)
        with self._lock:
            if self._listing is not None:
                self._listing.setdefault(key, []).append(RemoteTake(key, rate, digest, final, len(data), None))

    def remove(self, take: RemoteTake) -> None:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: it leaves the listing either way
            self.fs.rm_file(take.path)
        with self._lock:
            if self._listing is not None and take in self._listing.get(take.key, []):
                self._listing[take.key].remove(take)

    def __iter__(self) -> Iterator[RemoteTake]:
        for found in self.takes(refresh=True).values():
            yield from found
