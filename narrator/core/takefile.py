"""A take's WAV as it is received: PCM written under a temporary name beside its place, and hashed, as it arrives
(a 4096-character take is ~13 MB: never held in memory); made visible only by ``commit``, dropped by ``discard``.

A take received in an intake process (providers/intake.py) is handed over whole under its temporary name and
committed by the process that asked for it: the cache's order of steps is the same wherever the bytes came in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .audio import AtomicFile, WavWriter


@dataclass(frozen=True)
class HandedTake:
    """A take another process received: its whole WAV under a temporary name beside the take's place."""

    tmp: str
    rate: int
    samples: int
    digest: str  # SHA-256 of its samples


class TakeFile:
    def __init__(self, path: Path):
        self.path = path
        self.rate: int | None = None
        self.samples = 0
        self._file: AtomicFile | None = None
        self._wav: WavWriter | None = None
        self._digest = hashlib.sha256()  # of the samples as they arrive: the take's content address
        self._handed_digest: str | None = None

    @property
    def duration(self) -> float:
        return self.samples / self.rate if self.rate else 0.0

    @property
    def digest(self) -> str:
        return self._handed_digest or self._digest.hexdigest()

    def write(self, pcm: bytes, rate: int) -> None:
        if self._wav is None:
            self._file = AtomicFile(self.path)
            self._wav = WavWriter(self._file.file, rate)
            self.rate = rate
        elif rate != self.rate:
            raise ValueError(f"sample rate changed mid-take: {self.rate} then {rate}")
        if pcm:
            self._wav.write(pcm)
            self._digest.update(pcm)
            self.samples = self._wav.samples

    def hand_over(self) -> HandedTake:
        """The whole take, left under its temporary name for another process to ``adopt`` and commit."""
        self.close_wav()
        assert self._file is not None and self.rate is not None
        return HandedTake(self._file.release(), self.rate, self.samples, self.digest)

    def adopt(self, handed: HandedTake) -> None:
        """Take over what another process received (``hand_over`` there): commit or discard it here."""
        self._file = AtomicFile(self.path, handed.tmp)
        self.rate, self.samples, self._handed_digest = handed.rate, handed.samples, handed.digest

    def close_wav(self) -> None:
        """Complete the WAV's header (its sizes): the file is whole, still under its temporary name."""
        if self._file is None:
            raise ValueError("empty take: nothing was written")
        wav, self._wav = self._wav, None
        if wav is not None:
            wav.close()

    def commit(self) -> None:
        self.close_wav()
        assert self._file is not None
        self._file.commit()

    def discard(self) -> None:
        if self._wav is not None:
            self._wav.abandon()
        if self._file is not None:
            self._file.discard()
