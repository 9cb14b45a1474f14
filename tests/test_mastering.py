import subprocess

import pytest

from narrator.audio import Audio, atomic_wav
from narrator.devtools.fake_openai import speech_like
from narrator.mastering import PRESETS, LoudnessMeter, ebur128_command, measure_levels, measure_loudness
from tests.helpers import wav_bytes


@pytest.mark.parametrize("preset", ["podcast", "acx"])
def test_measuring_while_assembling_agrees_with_measuring_the_file(tmp_path, preset):
    pcm = speech_like("the keeper climbed the stairs and lit the lamp " * 6) + b"\x00\x00" * 24_000
    path = tmp_path / "chapter.wav"
    path.write_bytes(wav_bytes(Audio(pcm, 24_000)))
    meter = LoudnessMeter(PRESETS[preset], 24_000, "chapter")
    for start in range(0, len(pcm), 4_001 * 2):  # pieces of any size, as assembly writes them
        meter.write(pcm[start : start + 4_001 * 2])
    measured = meter.result()
    if preset == "podcast":
        assert measured == pytest.approx(measure_loudness(path, true_peak=False)[0], abs=0.1)
    else:
        assert measured == pytest.approx(measure_levels(path, 24_000).rms_db, abs=0.05)
    assert -40 < measured < -5


def test_the_loudness_meters_log_does_not_grow_with_the_length(tmp_path):
    """Its stderr is read whole: a line per 100 ms would be 170 MB for a 30-hour book."""
    minute = speech_like("the keeper climbed the stairs and lit the lamp " * 20, rate=8_000)[: 60 * 8_000 * 2]
    assert len(minute) == 60 * 8_000 * 2
    sizes = []
    for minutes in (1, 10):
        path = tmp_path / f"{minutes}.wav"
        with atomic_wav(path, 8_000) as out:
            for _ in range(minutes):
                out.write(minute)
        for true_peak in (False, True):
            command = ebur128_command(["-nostdin", "-i", str(path)], true_peak=true_peak)
            stderr = subprocess.run(command, capture_output=True, check=True).stderr
            assert b"Summary:" in stderr
            sizes.append(len(stderr))
    assert max(sizes) < 4_000, sizes
