"""The cast in a run: dialogue in the characters' voices through the loopback fake, which records the voice and
instructions of every request; a take never mixes two speakers; narration stays the narrator's; a change of one
character's voice redoes that character's takes and no others (and `diff` says so first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer
from narrator.text.dialogue.quotes import paragraph_spans
from tests.conftest import run_cli, write_job
from tests.dialogue_scenes import SCENES

pytestmark = pytest.mark.slow

KEY = "sk-test-0123456789abcdefghijklmnop"


def book(folder: Path, url: str) -> Path:
    chapters = [f"# {name.title()}\n\n" + "\n\n".join(paragraphs) for name, (paragraphs, _) in SCENES.items()]
    (folder / "scenes.md").write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
    cast = {"narrator": {"voice": "coral", "instructions": "Warm, measured narration."},
            "characters": {"Mara": {"voice": "nova", "instructions": "Quick, young."},
                           "Tobias": {"instructions": "Gruff, kind."}}}  # fmt: skip
    spec = {"sources": [{"path": "scenes.md", "split_at": 1}], "voice": {"provider": "openai", "base_url": url},
            "output": {"dir": "out", "formats": ["mp3"]}, "cache": "cache", "cast": cast}  # fmt: skip
    return write_job(folder, spec)


def run(job: Path):
    result = run_cli("run", str(job), env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    return json.loads((job.parent / "out" / "manifest.json").read_text())


def test_dialogue_is_read_in_the_characters_voices_and_a_recast_redoes_only_theirs(tmp_path):
    with FakeSpeechServer(KEY) as server:
        job = book(tmp_path, server.url)
        manifest = run(job)
        first = [r for r in server.records if r.status == 200]
    cast = yaml.safe_load((tmp_path / "job.cast.yaml").read_text())  # made by the run, as none was there
    voices = {name: c["voice"] for name, c in cast["characters"].items()} | {"narrator": "coral"}
    assert voices["Mara"] == "nova" and len(set(voices.values())) == len(voices)
    speakers: dict[str, set[str]] = {}
    for chunk in manifest["chunks"]:
        speakers.setdefault(chunk["take"], set()).add(chunk["speaker"])
    assert all(len(s) == 1 for s in speakers.values())  # a take never mixes two speakers
    said = {t["text"]: next(iter(speakers[t["id"]])) for t in manifest["takes"]}
    for record in first:  # each request in its speaker's voice, with its instructions
        speaker = said[record.input]
        assert record.voice == voices[speaker], (record.input, speaker)
        if speaker == "narrator":
            assert record.instructions == "Warm, measured narration."
        if speaker == "Tobias":
            assert record.instructions == "Gruff, kind."
    # narration in a character's voice: what of their chunks lies outside the quotation marks
    voiced = [c["text"] for c in manifest["chunks"] if c["speaker"] != "narrator"]
    outside = sum(len(t) - sum(e - b for b, e in paragraph_spans(t)[0]) for t in voiced)
    narration = sum(len(c["text"]) for c in manifest["chunks"] if c["speaker"] == "narrator")
    assert voiced and outside / narration < 0.02, outside
    # the editor gives Tobias another voice: only his takes are asked for again, and diff says so first
    tobias = {t for t, s in speakers.items() if s == {"Tobias"}}
    cast["characters"]["Tobias"]["voice"] = "verse"
    (tmp_path / "job.cast.yaml").write_text(yaml.safe_dump(cast, sort_keys=False), encoding="utf-8")
    diff = run_cli("diff", str(job), "--json", env={"OPENAI_API_KEY": KEY})
    changes = [c for chapter in json.loads(diff.stdout)["chapters"] for c in chapter["changes"]]
    assert json.loads(diff.stdout)["requests"] == len(tobias) == len(changes), diff.stdout
    assert all(c["kind"] == "revoiced" and c["text"].startswith("Tobias: ") for c in changes)
    with FakeSpeechServer(KEY) as server:
        cast_job = yaml.safe_load(job.read_text())
        cast_job["voice"]["base_url"] = server.url
        job.write_text(yaml.safe_dump(cast_job, sort_keys=False), encoding="utf-8")
        run(job)
        again = [r for r in server.records if r.status == 200]
    assert len(again) == len(tobias) and {r.voice for r in again} == {"verse"}
