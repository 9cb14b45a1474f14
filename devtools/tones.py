"""The fake voice's sound, and the fake listener that reads it back.

A word is a tone burst as long as the word would take to say (about 15 characters a second), silence between
words. Inside a burst each character is a slot of its own pitch: even characters in a low band, odd ones in a high
band, so that the listener finds where one character ends even when the next is the same letter. The pitch
survives what a book's audio goes through (resampling, loudness mastering, AAC or MP3 at speech bitrates), so the
fake transcription endpoint can hear any audio narrator made, a take or a whole M4B, and say what it says: lower
case, without punctuation, with each word's start and end.
"""

from __future__ import annotations

import unicodedata

import numpy as np

CHARS_PER_SECOND = 15.0
SYMBOLS = "abcdefghijklmnopqrstuvwxyz0123456789'"
STEP = 25.0  # Hz between two symbols' pitches
BANKS = (300.0, 1500.0)  # each band's lowest pitch: 300-1200 Hz and 1500-2400 Hz
GAP = 0.06  # seconds of silence after each word


def spoken(word: str) -> str:
    """What of a word the tones carry: its letters and digits (accents dropped), lower case."""
    plain = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in plain if c in SYMBOLS)


def speech_like(text: str, speed: float = 1.0, rate: int = 24_000) -> bytes:
    """``text`` as tone bursts, 16-bit mono PCM at ``rate``."""
    pieces: list[np.ndarray] = []
    gap = np.zeros(int(GAP * rate), dtype=np.float64)
    for word in text.split():
        seconds = max(0.08, (len(word) + 1) / CHARS_PER_SECOND / speed - GAP)
        n = int(seconds * rate)
        letters = spoken(word) or "'"
        slot = np.minimum(np.arange(n) * len(letters) // n, len(letters) - 1)
        pitch = np.array([BANKS[i % 2] + STEP * SYMBOLS.index(c) for i, c in enumerate(letters)])[slot]
        phase = np.cumsum(2 * np.pi * pitch / rate)  # continuous from slot to slot: no click at a change
        t = np.arange(n) / rate
        envelope = np.minimum(1.0, np.minimum(t, t[-1] - t + 1e-4) * 40)
        pieces += [0.3 * np.sin(phase) * envelope, gap]
    if not pieces:
        return b""
    return (np.concatenate(pieces) * 32767).astype("<i2").tobytes()


def listen(samples: np.ndarray, rate: int) -> list[tuple[str, float, float]]:
    """Every word the tones in ``samples`` (float, mono) say: (word, start, end) in seconds."""
    hop, frame = int(0.01 * rate), int(0.03 * rate)
    if len(samples) < frame:
        return []
    window = np.hanning(frame).astype(np.float32)
    count = (len(samples) - frame) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float32), frame)[::hop][:count]
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.02 * max(1e-9, float(np.max(np.abs(samples))))
    freqs = np.fft.rfftfreq(4 * frame, 1 / rate)  # zero-padded: a pitch to a few Hz
    band = (freqs >= BANKS[0] - STEP) & (freqs < BANKS[1] + STEP * len(SYMBOLS))
    spectrum = np.zeros((count, int(band.sum())), dtype=np.float32)
    spectrum[loud] = np.abs(np.fft.rfft(frames[loud] * window, n=4 * frame))[:, band]  # only the sounding frames
    freqs = freqs[band]
    symbols = _symbols(spectrum, freqs)
    words: list[tuple[str, float, float]] = []
    current: list[tuple[int, int]] = []  # (bank, symbol) of each sounding frame of the word being heard
    start = 0
    for i in range(count + 1):
        if i < count and loud[i]:
            if not current:
                start = i
            current.append(symbols[i])
            continue
        if current:
            words.append((_letters(current), start * hop / rate, (i * hop + frame) / rate))
            current = []
    return [w for w in words if w[0]]


def _symbols(power: np.ndarray, freqs: np.ndarray) -> list[tuple[int, int]]:
    """Each frame's strongest pitch: its bank, and the symbol nearest it."""
    best_power, best = np.full(len(power), -1.0), np.zeros((len(power), 2), dtype=int)
    for bank, low in enumerate(BANKS):
        band = np.flatnonzero((freqs >= low - STEP / 2) & (freqs < low + STEP * (len(SYMBOLS) - 0.5)))
        peak = band[np.argmax(power[:, band], axis=1)]
        strength = power[np.arange(len(power)), peak]
        louder = strength > best_power
        best_power[louder] = strength[louder]
        symbol = np.clip(np.round((freqs[peak] - low) / STEP).astype(int), 0, len(SYMBOLS) - 1)
        best[louder] = np.stack([np.full(int(louder.sum()), bank), symbol[louder]], axis=1)
    return [(int(b), int(s)) for b, s in best]


def _letters(frames: list[tuple[int, int]]) -> str:
    """A word's frames grouped into slots at each change of bank; a slot is its most frequent symbol."""
    letters, slot = [], [frames[0]]
    for f in frames[1:]:
        if f[0] != slot[-1][0]:
            letters.append(_majority(slot))
            slot = []
        slot.append(f)
    letters.append(_majority(slot))
    return "".join(letters)


def _majority(slot: list[tuple[int, int]]) -> str:
    symbols = [s for _, s in slot]
    return SYMBOLS[max(set(symbols), key=symbols.count)]
