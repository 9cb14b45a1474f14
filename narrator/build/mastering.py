"""Mastering to a preset, and measuring what came out.

Each chapter is measured once, while it is assembled (ffmpeg's ebur128 fed through a pipe, or RMS from its
PCM), brought to the preset's target with one linear gain, and held under the preset's peak ceiling by a
limiter: fast (no two-pass loudnorm) and transparent on speech, whose loudness range is small. The chain is
applied in each chapter file's own encode, and once into a WAV for the whole-book encoders. Every output
file is then decoded and measured again, after encoding: those are the figures report.json judges against
the preset.
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import ffmpeg
from ..core.audio import frame_energy
from ..core.errors import ToolError
from ..core.presets import (
    ACX_HEAD,
    ACX_MAX_FILE_MINUTES,
    ACX_NOISE_FLOOR,
    ACX_TAIL,
    ROOM_TONE_AMPLITUDE,
    Preset,
)
from ..core.records import QaFile

SILENCE_DBFS = -50.0  # below this a 10 ms frame counts as room tone
FLOOR_DB = -120.0  # digital silence is reported as this, not as minus infinity


@dataclass(frozen=True)
class Levels:
    duration: float
    rms_db: float
    peak_db: float
    noise_floor_db: float  # the quietest 0.5 s window, as ACX measures it
    head_silence: float
    tail_silence: float


def _db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else FLOOR_DB


def measure_levels(path: Path, rate: int = 44_100) -> Levels:
    """Decode ``path`` as a stream (memory stays flat whatever its length) and measure it."""
    frame = rate // 100  # 10 ms
    energies: list[np.ndarray] = []  # mean square per 10 ms frame: 1.4 MB an hour
    peak = 0
    try:
        # whole 5 s blocks (stream_pcm reads exactly this much), so 10 ms frames never straddle two
        for piece in ffmpeg.stream_pcm(path, rate, block=frame * 2 * 500):
            samples = np.frombuffer(piece, dtype="<i2")
            if samples.size >= frame:  # only the last piece may end mid-frame (its tail is not counted)
                peak = max(peak, -int(samples.min()), int(samples.max()))
                energies.append(frame_energy(piece, frame))
    except ToolError as exc:
        raise ToolError(f"measuring {path.name}: {exc}") from None
    energy = np.concatenate(energies) if energies else np.zeros(1, dtype=np.float32)
    full_scale = 32768.0
    rms = math.sqrt(float(np.mean(energy))) / full_scale
    windows = energy[: energy.size // 50 * 50].reshape(-1, 50).mean(axis=1) if energy.size >= 50 else energy
    floor = math.sqrt(float(np.min(windows))) / full_scale
    loud = np.flatnonzero(energy > (full_scale * 10 ** (SILENCE_DBFS / 20)) ** 2)
    head = float(loud[0] if loud.size else energy.size) * 0.01
    tail = float(energy.size - 1 - loud[-1] if loud.size else energy.size) * 0.01
    return Levels(energy.size * 0.01, _db(rms), _db(peak / full_scale), _db(floor), head, tail)


def ebur128_command(input_args: list[str], *, true_peak: bool) -> list[str]:
    """ffmpeg measuring its input with the EBU R128 meter; the summary comes on stderr. framelog=verbose: by
    default the meter logs a line per 100 ms frame, 5.8 MB of text an hour that the caller would hold whole
    (170 MB for a 30-hour book); this way only the summary is printed, whatever the length."""
    meter = "ebur128=framelog=verbose" + (":peak=true" if true_peak else "")
    return [ffmpeg.executable(), "-hide_banner", "-nostats", *input_args, "-af", meter, "-f", "null", "-"]


_INTEGRATED = re.compile(r"I:\s+(-?[\d.]+|-inf) LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS")


def measure_loudness(path: Path, *, true_peak: bool = True) -> tuple[float, float | None]:
    """(integrated loudness in LUFS, true peak in dBTP or None), by ffmpeg's EBU R128 meter. The true peak
    (4x oversampled) triples the meter's time, so mastering, which needs only the loudness, goes without."""
    command = ebur128_command(["-nostdin", "-i", str(path)], true_peak=true_peak)
    proc = ffmpeg.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.communicate()[1]
    return _ebur128_summary(stderr, proc.returncode, true_peak, path.name)


def _ebur128_summary(stderr: str, returncode: int, true_peak: bool, name: str) -> tuple[float, float | None]:
    summary = stderr[stderr.rfind("Summary:") :]
    integrated = _INTEGRATED.search(summary)
    peak = _TRUE_PEAK.search(summary) if true_peak else None
    if returncode != 0 or integrated is None or (true_peak and peak is None):
        raise ToolError(f"ffmpeg could not measure the loudness of {name}")
    return _value(integrated.group(1)), _value(peak.group(1)) if peak else None


class LoudnessMeter:
    """Measures a chapter while it is being assembled, for the gain that brings it to the target: integrated
    loudness by ffmpeg's ebur128 fed through a pipe by a thread of its own (so the meter runs on another core
    while assembly goes on, instead of each waiting for the other), or RMS for ACX. Saves a pass over every
    chapter between assembly and mastering."""

    def __init__(self, preset: Preset, rate: int, name: str):
        self.name = name
        self._squares = 0
        self._samples = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[bytes] = []
        # at most two pieces waiting (a take is up to 13 MB): the meter is faster than assembly on average
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        if preset.measure == "lufs":
            pcm_in = ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"]
            command = ebur128_command(pcm_in, true_peak=False)
            self._proc = ffmpeg.popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            stderr = self._proc.stderr
            assert stderr is not None
            self._threads = [
                threading.Thread(target=lambda: self._stderr.append(stderr.read()), daemon=True),
                threading.Thread(target=self._pump, daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        while (pcm := self._pieces.get()) is not None:
            with contextlib.suppress(BrokenPipeError):  # the meter failed (result() says so): keep draining
                stdin.write(pcm)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    def write(self, pcm: bytes) -> None:
        if self._proc is not None:
            self._pieces.put(pcm)
            return
        samples = np.frombuffer(pcm, dtype="<i2")
        for start in range(0, samples.size, 100_000):  # int64: exact, and a small copy at a time
            block = samples[start : start + 100_000].astype(np.int64)
            self._squares += int(np.dot(block, block))
        self._samples += samples.size

    def result(self) -> float:
        """Integrated loudness in LUFS, or RMS in dB, of everything written."""
        if self._proc is None:
            return _db(math.sqrt(self._squares / self._samples) / 32768.0) if self._samples else FLOOR_DB
        self._finish()
        stderr = b"".join(self._stderr).decode("utf-8", errors="replace")
        return _ebur128_summary(stderr, self._proc.returncode, False, self.name)[0]

    def abort(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._finish()

    def _finish(self) -> None:
        assert self._proc is not None
        self._pieces.put(None)
        for thread in self._threads:
            thread.join()
        self._proc.wait()


def _value(text: str) -> float:
    return FLOOR_DB if text == "-inf" else float(text)


def gain_for(preset: Preset, measured: float) -> float:
    """The gain (dB) that brings a chapter measured at ``measured`` (LUFS, or dB RMS for ACX) to the target."""
    return 0.0 if measured <= FLOOR_DB else preset.target - measured


def mastering_filters(
    preset: Preset | None, gain: float = 0.0, prelude: str | None = None, headroom: float = 0.0
) -> tuple[list[str], str]:
    """ffmpeg arguments that turn input 0 into what an output file holds, and the stream to map for the result:
    ``prelude`` first (a part's trim and padding: see outputs.py), then the preset's mastering with ``gain``.
    The same chain serves the mastered WAV the book encoders read and each chapter file's own encode, so both
    hear the same samples."""
    chain = [prelude] if prelude else []
    if preset is not None:
        limit = 10 ** ((preset.ceiling - headroom) / 20)  # headroom: what an encoder was seen to overshoot
        # latency=1: the limiter's look-ahead is compensated, so every sample stays where it was
        chain.append(f"volume={gain:.3f}dB,alimiter=limit={limit:.4f}:level=0:latency=1:attack=5:release=50")
        if preset.sample_rate:
            chain.append(f"aresample={preset.sample_rate}")
    if not chain:
        return [], "0:a"
    if preset is None or not preset.room_tone:
        return ["-af", ",".join(chain)], "0:a"
    rate = preset.sample_rate or 44_100
    tone = f"anoisesrc=color=pink:sample_rate={rate}:amplitude={ROOM_TONE_AMPLITUDE}:seed=1"
    graph = (
        f"[0:a]{','.join(chain)}[speech];{tone}[tone];[speech][tone]amix=inputs=2:duration=first:normalize=0[mastered]"
    )
    return ["-filter_complex", graph], "[mastered]"


def master_chapter(source: Path, dest: Path, mastering: tuple[list[str], str]) -> None:
    """Write ``dest``: ``source`` through the filters of ``mastering_filters``."""
    filters, output = mastering
    ffmpeg.run(
        ["-i", str(source), *filters, "-map", output, "-c:a", "pcm_s16le", str(dest)], f"mastering {source.name}"
    )


def check_file(path: Path, preset: Preset) -> QaFile:
    """Measure an encoded output file and judge it against every rule of the preset."""
    result: dict[str, Any] = {"file": path.name}
    rules: dict[str, bool] = {}
    if preset.measure == "lufs":
        # one decode (the meter's); the duration comes from the file's header, not from a second decode
        integrated, true_peak = measure_loudness(path)
        assert true_peak is not None
        result.update(
            duration_seconds=round(_header_duration(path), 3),
            integrated_lufs=round(integrated, 2),
            true_peak_dbtp=round(true_peak, 2),
        )
        rules["loudness"] = preset.tolerance[0] <= integrated <= preset.tolerance[1]
        rules["true_peak"] = true_peak <= preset.max_peak
    else:
        levels = measure_levels(path, preset.sample_rate or 44_100)
        result["duration_seconds"] = round(levels.duration, 3)
        result.update(
            rms_db=round(levels.rms_db, 2),
            peak_dbfs=round(levels.peak_db, 2),
            noise_floor_db=round(levels.noise_floor_db, 2),
            head_silence_seconds=round(levels.head_silence, 2),
            tail_silence_seconds=round(levels.tail_silence, 2),
        )
        rules["rms"] = preset.tolerance[0] <= levels.rms_db <= preset.tolerance[1]
        rules["peak"] = levels.peak_db <= preset.max_peak
        rules["noise_floor"] = levels.noise_floor_db <= ACX_NOISE_FLOOR
        rules["head_room_tone"] = ACX_HEAD[0] <= levels.head_silence <= ACX_HEAD[1]
        rules["tail_room_tone"] = ACX_TAIL[0] <= levels.tail_silence <= ACX_TAIL[1]
        rules["length"] = levels.duration <= ACX_MAX_FILE_MINUTES * 60
        if path.suffix == ".mp3":
            rules.update(_mp3_format_rules(path, preset, result))
    return QaFile(**result, rules=rules, passed=all(rules.values()))


def _header_duration(path: Path) -> float:
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.info is None:
        raise ToolError(f"cannot read the length of {path.name}")
    return float(audio.info.length)


def _mp3_format_rules(path: Path, preset: Preset, result: dict[str, Any]) -> dict[str, bool]:
    from mutagen.mp3 import MP3, BitrateMode

    info = MP3(path).info
    if info is None:
        raise ToolError(f"cannot read the MP3 header of {path.name}")
    result.update(sample_rate=info.sample_rate, bitrate_kbps=info.bitrate // 1000)
    wanted = int((preset.mp3_bitrate or "192k").rstrip("k")) * 1000
    # LAME writes no Xing/Info header mode for CBR that mutagen can always read: unknown counts as CBR
    constant = info.bitrate_mode in (BitrateMode.CBR, BitrateMode.UNKNOWN)
    return {"sample_rate": info.sample_rate == preset.sample_rate, "bitrate_cbr": info.bitrate == wanted and constant}
