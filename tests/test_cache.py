import hashlib
import itertools
import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.fake_openai import streamed_wav
from narrator.core.audio import Audio, PcmStream, read_wav
from narrator.synthesis.cache import TakeCache, take_key
from tests.helpers import parse_wav, put_take, wav_bytes


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
    path = put_take(cache, "ab" * 32, audio)
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


@pytest.mark.parametrize(
    "body",
    [
        lambda pcm: wav_bytes(Audio(pcm, 24000)),
        lambda pcm: streamed_wav(pcm, 24000),  # sizes 0xFFFFFFFF: the data runs to the end
        lambda pcm: wav_bytes(Audio(pcm, 24000)) + b"LIST\x04\x00\x00\x00junk",  # a chunk after the data
        lambda pcm: streamed_wav(pcm, 24000) + b"\x07",  # a stray last byte: padding, not half a sample
    ],
)
def test_a_wav_file_is_read_from_where_its_samples_start(tmp_path, body):
    pcm = bytes(range(256)) * 400  # more than one read of the header
    path = tmp_path / "take.wav"
    path.write_bytes(body(pcm))
    assert read_wav(path) == Audio(pcm, 24000)
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(ValueError, match="no data chunk"):
        read_wav(path)


@given(cuts=st.lists(st.integers(0, 10_300), max_size=12), streamed=st.booleans())
def test_a_wav_fed_in_any_pieces_gives_the_same_samples(cuts, streamed):
    pcm = bytes(range(256)) * 40
    body = streamed_wav(pcm, 24000) if streamed else wav_bytes(Audio(pcm, 24000)) + b"LIST\x04\x00\x00\x00junk"
    stream = PcmStream(wav=True)
    received = b""
    edges = [0, *sorted(cuts), len(body)]
    for start, end in itertools.pairwise(edges):
        received += stream.feed(body[start:end])
        assert len(received) % 2 == 0  # whole samples only, whatever the cut
    stream.close()
    assert received == pcm and stream.rate == 24000  # a declared data size keeps trailing chunks out


def test_raw_pcm_cut_mid_sample_and_bodies_without_audio_are_refused():
    stream = PcmStream(wav=False, rate=24000)
    assert stream.feed(b"\x01\x02\x03") == b"\x01\x02"
    with pytest.raises(ValueError, match="mid-sample"):
        stream.close()
    with pytest.raises(ValueError, match="no data chunk"):
        parse_wav(wav_bytes(Audio(b"", 8000))[:36])
    with pytest.raises(ValueError, match="not a RIFF"):
        parse_wav(b"<html>502 Bad Gateway</html>")


def test_a_pending_take_is_invisible_until_committed_and_leaves_nothing_when_discarded(tmp_path):
    cache = TakeCache(tmp_path)
    take = cache.pending("ef" * 32)
    take.write(b"\x01\x00" * 1000, 24000)
    take.write(b"\x02\x00" * 1000, 24000)
    assert not cache.has("ef" * 32) and take.samples == 2000
    take.commit()
    assert cache.get("ef" * 32) == Audio(b"\x01\x00" * 1000 + b"\x02\x00" * 1000, 24000)
    dropped = cache.pending("12" * 32)
    dropped.write(b"\x01\x00" * 10, 24000)
    with pytest.raises(ValueError, match="rate changed"):
        dropped.write(b"\x01\x00", 22050)
    dropped.discard()
    assert not cache.has("12" * 32) and list(tmp_path.glob("takes/12/*")) == []


def test_a_take_carries_the_hash_of_its_samples(tmp_path):
    cache = TakeCache(tmp_path)
    audio = Audio(b"\x01\x00\x02\x00" * 500, 16000)
    put_take(cache, "cd" * 32, audio)
    sidecar = cache.path("cd" * 32).with_suffix(".sha256")
    assert sidecar.read_text() == hashlib.sha256(audio.pcm).hexdigest() == cache.audio_hash("cd" * 32)
    # a take from a cache older than hashes gets its hash on first use, the same one
    sidecar.unlink()
    assert cache.audio_hash("cd" * 32) == hashlib.sha256(audio.pcm).hexdigest() and sidecar.is_file()
    assert cache.audio_hash("ef" * 32) is None
