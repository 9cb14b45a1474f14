import os
import time

from narrator.audio import Audio, parse_wav, wav_bytes
from narrator.cache import TakeCache, take_key
from narrator.devtools.fake_openai import streamed_wav


def test_key_depends_on_everything_that_shapes_the_sound():
    base = {"provider": "openai", "model": "gpt-4o-mini-tts", "voice": "marin", "instructions": None, "speed": 1.0}
    key = take_key(base, "Hello.")
    assert key == take_key(dict(reversed(base.items())), "Hello.")  # order of settings does not matter
    for change in ({"voice": "cedar"}, {"speed": 1.1}, {"instructions": "Whisper."}, {"model": "tts-1"}):
        assert take_key({**base, **change}, "Hello.") != key
    assert take_key(base, "Hello!") != key


def test_put_get_and_sweep_of_killed_writes(tmp_path):
    cache = TakeCache(tmp_path)
    audio = Audio(b"\x01\x00\x02\x00" * 100, 22050)
    path = cache.put("ab" * 32, audio)
    assert cache.get("ab" * 32) == audio and path.stat().st_mode & 0o044  # readable like any file
    stale = path.parent / ".x.wav.123.tmp"
    fresh = path.parent / ".y.wav.456.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert cache.sweep() == 1 and not stale.exists() and fresh.exists()
    assert cache.get("cd" * 32) is None


def test_streamed_wav_header_is_read_from_the_bytes():
    pcm = bytes(range(256)) * 40
    audio = parse_wav(streamed_wav(pcm, 24000))
    assert audio.pcm == pcm and audio.rate == 24000
    assert parse_wav(wav_bytes(audio)) == audio
