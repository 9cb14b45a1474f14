"""The mastering presets and ACX's rules, written once: the job spec reads the names and the chapter-length rule
from here, build/mastering.py the targets."""

from __future__ import annotations

from dataclasses import dataclass

ACX_MAX_FILE_MINUTES = 120.0  # ACX: at most 120 minutes per file


@dataclass(frozen=True)
class Preset:
    name: str
    measure: str  # "lufs" (integrated loudness, EBU R128) or "rms" (ACX)
    target: float  # LUFS or dB RMS
    tolerance: tuple[float, float]  # allowed range of the measured value
    ceiling: float  # dBFS the limiter holds sample peaks under
    max_peak: float  # the rule: dBTP for lufs presets, dBFS sample peak for ACX
    sample_rate: int | None = None
    mp3_bitrate: str | None = None
    room_tone: bool = False  # lay a quiet, steady noise floor under everything (see ROOM_TONE_AMPLITUDE)


PRESETS: dict[str, Preset | None] = {
    "none": None,
    # ACX (Audible): RMS -23..-18 dB, peak <= -3 dBFS, noise floor <= -60 dB, 0.5-1 s of room tone at the
    # head and 1-5 s at the tail, MP3 192 kbps CBR at 44.1 kHz, one chapter per file, at most 120 minutes.
    "acx": Preset("acx", "rms", -20.0, (-23.0, -18.0), -3.6, -3.0, 44_100, "192k", room_tone=True),
    "podcast": Preset("podcast", "lufs", -16.0, (-17.0, -15.0), -1.5, -1.0),
    "ebu": Preset("ebu", "lufs", -23.0, (-24.0, -22.0), -1.5, -1.0),
}
# Synthetic speech sits on digital silence, which ACX reviewers reject as "dead air": the ACX preset lays pink
# noise under the whole chapter instead, room tone at about -72 dB RMS (ffmpeg's astats: amplitude 0.001 gives
# -74 dB), far under ACX's -60 dB noise-floor ceiling and under the -50 dBFS that counts as silence. Seeded, so
# the same chapter masters to the same samples every time.
ROOM_TONE_AMPLITUDE = 0.00125
ACX_HEAD = (0.5, 1.0)
ACX_TAIL = (1.0, 5.0)
ACX_NOISE_FLOOR = -60.0
