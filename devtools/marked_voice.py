"""The local voice as a command (``voice: {provider: command}``) that also tells where each sentence of a take
begins: the ground truth a read-along book's clips are measured against.

    python -m devtools.marked_voice TEXT_FILE OUT_WAV RECORD_DIR

Speaks the text with narrator's local voice (piper) exactly as the local provider does, writes the WAV, and
writes ``RECORD_DIR/<sha256 of the PCM>.json``: the rate and the sample where each sentence begins (piper speaks a
take sentence by sentence and joins them with narrator's pauses, so it knows). The voice's noise makes no two
takes alike, so the truth has to be taken when the take is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import wave
from pathlib import Path

from narrator.job.spec import VoiceSpec
from narrator.providers.local import LocalProvider


def main(argv: list[str]) -> int:
    text_file, out, record_dir = (Path(a) for a in argv)
    provider = LocalProvider(VoiceSpec(), threads=1)
    provider._load()
    starts: list[int] = []
    audio = provider._speak(text_file.read_text(encoding="utf-8"), starts)
    asyncio.run(provider.aclose())
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.rate)
        w.writeframes(audio.pcm)
    record_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(audio.pcm).hexdigest()
    (record_dir / f"{digest}.json").write_text(json.dumps({"rate": audio.rate, "starts": starts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
