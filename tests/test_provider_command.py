"""The `command` provider: any local program that writes a WAV. Real processes: piper's own CLI, and small
Python programs written by the tests; the venv's bin/ is kept off PATH, as for a user who never activated it."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from narrator.core.audio import read_wav
from tests.conftest import write_job
from tests.helpers import read_metadata

pytestmark = pytest.mark.slow  # each over half a second: `pytest -m 'not slow'` leaves them out

PATH = {"PATH": "/usr/bin:/bin"}  # no venv: the program is found beside the running Python
PIPER = ["piper", "-m", "{model}", "-i", "{text_file}", "-f", "{out}"]
BOOK = "# One\n\nThe keeper climbed the stairs. The lamp was cold.\n\n# Two\n\nMorning came at last.\n"

# A text-to-speech program of the test's own: a tone as long as the text, and the text it was given logged.
TONE = textwrap.dedent("""\
    import math, struct, sys, wave
    text_file, out, log = sys.argv[1:4]
    text = open(text_file, encoding="utf-8").read()
    open(log, "a", encoding="utf-8").write(text)
    with wave.open(out, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        n = 16000 * len(text.split()) // 3
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(n)))
""")


def job(tmp_path, command, **extra):
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    voice = {"provider": "command", "command": command, **extra}
    return write_job(tmp_path, {"sources": ["book.md"], "voice": voice, "output": {"dir": "out", "formats": ["m4b"]}})


def test_a_chapter_spoken_through_pipers_own_command_line(tmp_path, cli):
    result = cli("run", str(job(tmp_path, PIPER)), env=PATH)
    assert result.returncode == 0, result.stderr
    m4b = tmp_path / "out" / "One.m4b"
    chapters = read_metadata(m4b)["chapters"]
    assert [c["title"] for c in chapters] == ["One", "Two"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["chunks"]["synthesized"] == 4 and report["provider"]["command"] == PIPER
    # every take is piper's speech: about the length the text needs, at piper's 22.05 kHz
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for chunk in manifest["chunks"]:
        take = read_wav(tmp_path / "out" / chunk["audio"])
        # piper varies a little run to run (0.29 to 0.4 s measured for the one-word title "One")
        assert take.rate == 22_050 and 0.2 < take.duration < 1.2 * len(chunk["text"].split())
    assert not list((tmp_path / "out" / ".narrator").rglob("take-*"))  # no text or WAV left behind


def test_text_goes_through_a_file_never_a_shell(tmp_path, cli):
    (tmp_path / "tone.py").write_text(TONE)
    log = tmp_path / "spoken.log"
    hostile = "Run $(touch pwned) and `touch pwned2`; rm -rf / now. \"Quotes\" and 'more' & | > < *"
    (tmp_path / "book.txt").write_text(f"{hostile}\n", encoding="utf-8")  # plain text: read verbatim
    command = ["python", "tone.py", "{text_file}", "{out}", str(log)]
    spec = {"sources": ["book.txt"], "output": {"dir": "out", "formats": ["m4b"]},
            "voice": {"provider": "command", "command": command}}  # fmt: skip
    result = cli("run", str(write_job(tmp_path, spec)), cwd=tmp_path, env=PATH)
    assert result.returncode == 0, result.stderr
    assert hostile.replace('"', '"') in log.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("pwned*"))


def test_the_argument_list_is_part_of_the_takes_fingerprint(tmp_path, cli):
    (tmp_path / "tone.py").write_text(TONE)
    log = str(tmp_path / "log")
    first = cli("run", str(job(tmp_path, ["python", "tone.py", "{text_file}", "{out}", log])), cwd=tmp_path, env=PATH)
    assert first.returncode == 0, first.stderr
    again = cli("plan", "--json", str(job(tmp_path, ["python", "tone.py", "{text_file}", "{out}", log])), env=PATH)
    assert json.loads(again.stdout)["total"]["cached"] == 4
    changed = cli("plan", "--json", str(job(tmp_path, ["python", "./tone.py", "{text_file}", "{out}", log])), env=PATH)
    assert json.loads(changed.stdout)["total"]["cached"] == 0


def test_a_failing_command_fails_its_chunks_with_a_line_naming_it(tmp_path, cli):
    command = ["python", "-c", "import sys; sys.stderr.write('voice file is corrupt\\n'); sys.exit(3)", "{out}"]
    result = cli("run", str(job(tmp_path, command)), env=PATH)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["chunks"]["failed"] == 4
    error = json.loads((tmp_path / "out" / "manifest.json").read_text())["chunks"][0]["error"]
    assert error == "command 'python' exited with status 3: voice file is corrupt"


def test_a_command_that_writes_no_audio(tmp_path, cli):
    result = cli("run", str(job(tmp_path, ["python", "-c", "pass", "{out}"])), env=PATH)
    assert result.returncode == 1
    error = json.loads((tmp_path / "out" / "manifest.json").read_text())["chunks"][0]["error"]
    assert error == "command 'python' wrote no audio to {out}"


def test_mistakes_in_the_command_are_job_errors(tmp_path, cli):
    missing = cli("validate", str(job(tmp_path, ["no-such-tts-program", "{out}"])), env=PATH)
    assert missing.returncode == 2 and "voice.command: program 'no-such-tts-program' not found" in missing.stderr
    assert str(sys.executable).rsplit("/", 1)[0] in missing.stderr
    unknown = cli("validate", str(job(tmp_path, ["piper", "{output}"])), env=PATH)
    assert unknown.returncode == 2
    assert (
        "voice.command[1]: unknown placeholder {output}; known: text_file, out, model, voice, speed" in unknown.stderr
    )
    empty = cli("validate", str(job(tmp_path, [])), env=PATH)
    assert empty.returncode == 2 and "voice.command:" in empty.stderr
    absent = write_job(tmp_path, {"sources": ["book.md"], "voice": {"provider": "command"}, "output": {"dir": "o"}})
    result = cli("validate", str(absent), env=PATH)
    assert result.returncode == 2 and "voice.command: required: the program and its arguments" in result.stderr
    assert all("Traceback" not in r.stderr for r in (missing, unknown, empty, result))


def test_a_cast_gives_each_character_its_own_voice_through_the_command(tmp_path, cli):
    """With a cast, the command is run with each character's voice (``{voice}``: a model path, a speaker id):
    a local program can read dialogue in as many voices as it has."""
    voiced = TONE.replace("text_file, out, log = sys.argv[1:4]", "text_file, out, log, voice = sys.argv[1:5]")
    voiced = voiced.replace('open(log, "a", encoding="utf-8").write(text)', LOG_VOICE)
    (tmp_path / "tone.py").write_text(voiced)
    log = tmp_path / "spoken.log"
    text = '# One\n\n"Come in," said Mara. "The lamp is lit."\n\n"Thank you," said Tobias.\n'
    (tmp_path / "book.md").write_text(text, encoding="utf-8")
    command = ["python", "tone.py", "{text_file}", "{out}", str(log), "{voice}"]
    cast = {"characters": {"Mara": {"voice": "mara-model"}, "Tobias": {"voice": "speaker-7"}}}
    voice = {"provider": "command", "command": command, "voice": "narrator-model"}
    spec = {"sources": ["book.md"], "output": {"dir": "out", "formats": ["mp3"]}, "voice": voice, "cast": cast}
    result = cli("run", str(write_job(tmp_path, spec)), cwd=tmp_path, env=PATH)
    assert result.returncode == 0, result.stderr
    said = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    by_text = {text.strip(): voice for voice, text in said}  # the text file ends with a newline
    assert by_text['"Come in,"'] == by_text['"The lamp is lit."'] == "mara-model"
    assert by_text['"Thank you,"'] == "speaker-7"
    assert {v for v, t in said if not t.startswith('"')} == {"narrator-model"}  # the title and the tags


LOG_VOICE = "open(log, 'a', encoding='utf-8').write(__import__('json').dumps([voice, text]) + '\\n')"
