"""The local voice's floor (issue #27): piper's ONNX inference alone, over the sentences of a generated novel, in the
session settings narrator could choose, with narrator's graph (2-D convolutions, providers/piper_graph.py) and as
exported: real time of speech (no pauses) per wall second."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sentences(count: int, voice: Any) -> list[list[int]]:
    from devtools.novel import generate_novel
    from narrator.text.chunker import spoken_sentences

    text = generate_novel(count * 20, seed=4)
    found = [s for p in text.split("\n\n") if not p.startswith("#") for s in spoken_sentences(p)]
    return [voice.phonemes_to_ids(ph) for s in found[:count] for ph in voice.phonemize(s) if ph]


def _session(model: Path | bytes, intra: int = 1, **entries: str) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = intra, 1
    options.enable_mem_pattern = False  # as narrator runs it (providers/local.py)
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def _speak_all(session: Any, items: Sequence[list[int]]) -> int:
    import numpy as np

    from narrator.providers.local import BASE_LENGTH_SCALE

    samples = 0
    for ids in items:
        feed = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([0.667, BASE_LENGTH_SCALE, 0.8], dtype=np.float32)}  # fmt: skip
        samples += session.run(None, feed)[0].size
    return samples


def _measure(label: str, sessions: Callable[[], list[Any]], threads: int, items: Sequence[list[int]]) -> None:
    made = sessions()
    for session in made:
        _speak_all(session, items[:3])  # the first inference in a session is slow
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        shares = [items[k::threads] for k in range(threads)]
        samples = sum(pool.map(lambda k: _speak_all(made[k % len(made)], shares[k]), range(threads)))
    wall = time.perf_counter() - started
    seconds = samples / 22_050
    print(f"{label:<46} {seconds / wall:5.1f} x real time ({seconds:.0f} s of speech in {wall:.1f} s)")


def bench_piper(count: int = 300) -> None:
    from piper import PiperVoice

    from narrator.providers.local import resolve_voice
    from narrator.providers.piper_graph import convolutions_in_2d

    model, config = resolve_voice(None)
    items = _sentences(count, PiperVoice.load(model, config_path=config))
    rewritten = convolutions_in_2d(model)
    print(f"\n== piper's inference alone: {len(items)} sentences, en_US-joe-medium ==")
    _measure("one session, two threads (narrator)", lambda: [_session(rewritten)], 2, items)
    _measure("  the same, graph as exported", lambda: [_session(model)], 2, items)
    _measure("a session per thread, two threads", lambda: [_session(rewritten), _session(rewritten)], 2, items)
    _measure("one session of two intra-op threads", lambda: [_session(rewritten, intra=2)], 1, items)
    _measure("one session, one thread", lambda: [_session(rewritten)], 1, items)
    _measure("  the same, graph as exported", lambda: [_session(model)], 1, items)


if __name__ == "__main__":
    bench_piper(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
