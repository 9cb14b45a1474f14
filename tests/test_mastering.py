import json
import subprocess

import pytest

from devtools.fake_openai import speech_like
from narrator.build.mastering import LoudnessMeter, ebur128_command, measure_levels, measure_loudness
from narrator.core.audio import Audio, atomic_wav
from narrator.core.presets import PRESETS
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_file_over_its_peak_rule_after_encoding_is_made_again_with_more_headroom(tmp_path, monkeypatch):
    """A limiter ceiling above the preset's own peak rule stands in for a codec that overshoots: every file
    fails its first measurement, is encoded again with the overshoot as headroom, and passes."""
    from dataclasses import replace

    from narrator import load_job, run_job
    from tests.conftest import write_job

    monkeypatch.setitem(PRESETS, "acx", replace(PRESETS["acx"], ceiling=-1.5))  # the rule: peak <= -3 dBFS
    (tmp_path / "a.md").write_text("# A\n\n" + "A clear and steady voice reads this line aloud. " * 6 + "\n")
    spec = {"sources": ["a.md"], "output": {"dir": "out", "formats": ["m4b", "mp3"], "mastering": "acx"}}
    result = run_job(load_job(write_job(tmp_path, spec)), progress=False, strict=True)
    assert result.exit_code == 0, result.message
    for name in ("A.m4b", "chapters/01 A.mp3"):
        peak = measure_levels(tmp_path / "out" / name).peak_db
        assert -4.5 < peak <= -3.0, (name, peak)  # held under the rule, and not by silencing the book
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["stage_runs"]["qa"] == 1  # the chapter's MP3 measured as it was made; the book's files at the end
    assert {q["file"] for q in report["qa"]["files"]} == {"A.m4b", "01 A.mp3"}
