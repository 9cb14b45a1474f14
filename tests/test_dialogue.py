"""Dialogue: quotations found in every form a book writes them, and who says each, measured on scenes whose
speakers we wrote down by hand (tests/dialogue_scenes.py); the cast file `narrator cast` writes and keeps."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from narrator.text.dialogue.attribution import SPEECH_VERBS, Cast, Character, attribute
from narrator.text.dialogue.quotes import find_quotations
from narrator.text.document import Block
from tests.conftest import run_cli, write_job
from tests.dialogue_scenes import CHARACTERS, SCENES


def quoted(paragraphs: list[str]) -> list[list[str]]:
    blocks = [Block("paragraph", p) for p in paragraphs]
    return [[blocks[b].text[s:e] for b, (s, e) in q.parts] for q in find_quotations(0, blocks)]


@pytest.mark.parametrize(
    ("paragraph", "parts"),
    [
        ('"Yes," said she, "I do."', ['"Yes,"', '"I do."']),  # one quotation, two parts, the tag between
        ("'I don't think,' said Jane, 'that the Bennets' house is far.'",
         ["'I don't think,'", "'that the Bennets' house is far.'"]),  # apostrophes are not quotes
        ("\u2014 Where are you going? \u2014 asked Jane. \u2014 It is late.",
         ["\u2014 Where are you going?", "\u2014 It is late."]),  # em-dash dialogue
        ('"She said \'never\' twice," he said.', ['"She said \'never\' twice,"']),  # a quotation inside one
        ("The dogs' bowls were empty and the boys' boots were wet.", []),  # plurals' apostrophes only
        ("'No, I'll look first,' she said, 'and see if it's marked \"salt\" or not'; and she looked.",
         ["'No, I'll look first,'", "'and see if it's marked \"salt\" or not'"]),  # double quotes inside single
        ("'I am older, and must know better'; and that was all.", ["'I am older, and must know better'"]),
        ("'I can't say, sir' said Wren.", ["'I can't say, sir'"]),  # closed by its last letter: a verb follows
        ("'--yes, that's the place--' she went on.", ["'--yes, that's the place--'"]),  # opens on a dash
        ("A jar labelled 'SALT' stood there.", ["'SALT'"]),  # a label in capitals
        ("He was goin' home with the Harpers' dog.", []),  # a dropped letter, a plural's apostrophe
    ],
)  # fmt: skip
def test_quotations_in_every_form(paragraph, parts):
    found = quoted([paragraph])
    assert (found[0] if found else []) == parts


def test_a_speech_over_several_paragraphs_is_one_quotation():
    found = quoted(['"It began in the night.', '"But there was nobody there," he said.', '"Next," she said.'])
    assert found == [['"It began in the night.', '"But there was nobody there,"'], ['"Next,"']]


def test_a_paragraph_holds_a_second_speech_after_a_sentence_of_narration():
    found = quoted(["'Come back!' When the Heron heard this, it said, 'No.' 'Please!' 'Well,' said she, 'I will.'"])
    assert found == [["'Come back!'"], ["'No.'"], ["'Please!'"], ["'Well,'", "'I will.'"]]


def test_attribution_in_a_book_of_creatures_named_by_the_text():
    """Speakers called "the Heron", an "it", a sentence's first word that is no name, a label nobody says, the
    nearest of two names before a speech: the book read first, as `narrator cast` reads it."""
    paragraphs = [
        "Wren walked to the pond, where the Heron stood on one leg.",
        "'Good morning,' said Wren, and she shook herself dry.",
        "'Who is there?' said the Heron.",
        "Presently she answered, 'Only me.'",
        "The Heron looked down at her for a long while, and it said, 'You are very small.'",
        "On the bank stood a jar labelled 'FISH' and nothing else.",
        "'I am not small!' said Wren. When the Heron heard this, it laughed, and Wren heard the Heron say, 'Grow.'",
    ]
    blocks = [Block("paragraph", p) for p in paragraphs]
    cast = Cast()
    cast.read(paragraphs)
    answers = attribute(blocks, find_quotations(0, blocks), cast)
    assert [a.speaker or "narrator" for a in answers] == ["Wren", "Heron", "Wren", "Heron", "narrator", "Wren", "Heron"]
    assert [a.how for a in answers][:5] == ["tag", "tag", "pronoun", "pronoun", "mention"]
    assert "Presently" not in {c.name for c in cast.characters}


def test_backtick_quotes_of_an_old_plain_text_are_read_as_quotes(tmp_path):
    """Older Gutenberg texts open a quotation with a backtick (`Oh dear!'), a double one with two (``...''):
    never read aloud, and the cast finds the quotations."""
    from narrator.text.sources.text import read_text

    source = tmp_path / "pond.txt"
    source.write_text("CHAPTER I\n\n`Who is there?' said the Heron.  ``Nobody,'' said Wren.\n", encoding="utf-8")
    [chapter] = read_text(source).chapters
    text = " ".join(b.text for b in chapter.blocks if b.kind == "paragraph")
    assert "`" not in text and "\u2018Who is there?'" in text and "\u201cNobody,\u201d" in text
    code = tmp_path / "code.txt"  # backticks on both sides are code, read as they are
    code.write_text("CHAPTER I\n\nType `make test` and wait.\n", encoding="utf-8")
    assert "`make test`" in read_text(code).chapters[0].blocks[-1].text


def _explicit(paragraph: str) -> bool:
    """A speech verb in the paragraph's narration (outside its quotes): the quotation is tagged."""
    narration = re.sub(r'"[^"]*"?|\'[^\']*\'|\u2014[^\u2014]*', " ", paragraph)
    return any(w.lower() in SPEECH_VERBS for w in re.findall(r"[A-Za-z]+", narration))


def test_offline_attribution_on_scenes_annotated_by_hand():
    right = total = tagged_right = tagged = 0
    misses = []
    for name, (paragraphs, speakers) in SCENES.items():
        blocks = [Block("paragraph", p) for p in paragraphs]
        quotations = find_quotations(0, blocks)
        assert len(quotations) == len(speakers), name
        cast = Cast([Character(n, gender=g) for n, g in CHARACTERS.items()])
        for q, answer, truth in zip(quotations, attribute(blocks, quotations, cast), speakers, strict=True):
            ok = (answer.speaker or "narrator") == truth
            total, right = total + 1, right + ok
            if _explicit(blocks[q.first_block].text):
                tagged, tagged_right = tagged + 1, tagged_right + ok
            if not ok:
                misses.append(
                    f"{name}: {blocks[q.first_block].text[:50]!r}: {answer.speaker} ({answer.how}), not {truth}"
                )
    print(f"{right}/{total} quotations right ({right / total:.0%}); with a speech verb {tagged_right}/{tagged} "
          f"({tagged_right / tagged:.0%})")  # fmt: skip
    assert right / total >= 0.80, misses
    assert tagged_right / tagged >= 0.95, misses


@pytest.mark.slow
def test_narrator_cast_writes_the_cast_file_and_keeps_the_editors_corrections(tmp_path):
    paragraphs, _ = SCENES["harbour"]
    (tmp_path / "scene.md").write_text("# Harbour\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    cast = {"narrator": {"voice": "coral"}, "characters": {"Mara": {"voice": "nova", "aliases": ["Mara Quill"]}}}
    spec = {"sources": ["scene.md"], "voice": {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
            "output": {"dir": "out"}, "cache": "cache", "cast": cast}  # fmt: skip
    job = write_job(tmp_path, spec)
    result = run_cli("cast", str(job))
    assert result.returncode == 0, result.stderr
    assert "12 quotations" in result.stdout
    path = tmp_path / "job.cast.yaml"
    cast = yaml.safe_load(path.read_text())
    assert cast["narrator"]["voice"] == "coral"
    assert cast["characters"]["Mara"]["voice"] == "nova"
    voices = [c["voice"] for c in cast["characters"].values()]
    assert len(set(voices)) == len(voices) and "coral" not in voices  # distinct, and not the narrator's
    assert [q["confidence"] for q in cast["quotations"]] == sorted(q["confidence"] for q in cast["quotations"])
    # the editor gives one quotation to somebody else; a new cast keeps it
    cast["quotations"][0]["speaker"] = "Agnes"
    corrected = cast["quotations"][0]["id"]
    # and another, in a file from a narrator that read this quotation and the words after it as one (another id,
    # its excerpt the two joined): the correction goes to the quotation that begins as that one began
    older = cast["quotations"][1]
    moved, older["id"] = older["id"], "q0123456789"
    older["excerpt"] += " … “and the rest of what was said then.”"
    older["speaker"], older["how"] = ("Mara" if older["speaker"] == "Agnes" else "Agnes"), "editor"
    path.write_text(yaml.safe_dump(cast, sort_keys=False), encoding="utf-8")
    again = run_cli("cast", str(job))
    assert again.returncode == 0, again.stderr
    assert "2 kept from the cast file" in again.stdout
    kept = {q["id"]: q for q in yaml.safe_load(path.read_text())["quotations"]}
    assert kept[corrected]["speaker"] == "Agnes" and kept[corrected]["how"] == "editor"
    assert kept[moved]["speaker"] == older["speaker"] and kept[moved]["how"] == "editor"
    assert "q0123456789" not in kept


def test_cast_without_a_cast_key_is_one_line(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nText.\n", encoding="utf-8")
    job = write_job(tmp_path, {"sources": ["a.md"], "output": {"dir": "out"}})
    result = run_cli("cast", str(job))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "cast:" in result.stderr


def _model_job(folder, url: str, scene: str = "kitchen"):
    paragraphs, _ = SCENES[scene]
    (folder / "scene.md").write_text("# Scene\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    cast = {"attribution": "model", "characters": {"Agnes": {"voice": "sage"}, "Silas": {"voice": "onyx"}}}
    spec = {"sources": ["scene.md"], "voice": {"provider": "openai", "base_url": url},
            "output": {"dir": "out"}, "cache": "cache", "cast": cast}  # fmt: skip
    return write_job(folder, spec)


@pytest.mark.slow
def test_attribution_by_model_sends_structured_output_checks_the_answers_and_caches_them(tmp_path):
    from devtools.fake_openai import FakeSpeechServer

    key = "sk-test-0123456789abcdefghijklmnop"
    with FakeSpeechServer(key) as server:
        job = _model_job(tmp_path, server.url)
        # plan counts what a run would ask the model, and the budget covers it: refused, nothing asked
        plan = json.loads(run_cli("plan", str(job), "--json").stdout)
        assert plan["cast"]["chapters_to_ask"] == 1 and plan["cast"]["quotations"] == 13
        assert plan["cast"]["cost_usd"] > 0 and plan["total"]["cost_to_finish_usd"] > plan["cast"]["cost_usd"]
        spec = yaml.safe_load(job.read_text())
        job.write_text(yaml.safe_dump({**spec, "budget_usd": plan["cast"]["cost_usd"] / 2}), encoding="utf-8")
        refused = run_cli("run", str(job), env={"OPENAI_API_KEY": key})
        assert refused.returncode != 0 and "budget_usd" in refused.stderr and not server.chats
        job.write_text(yaml.safe_dump(spec), encoding="utf-8")
        first = run_cli("cast", str(job), env={"OPENAI_API_KEY": key})
        assert first.returncode == 0, first.stderr
        [(status, request)] = server.chats
        assert status == 200 and request["model"] == "gpt-4o-mini"
        schema = request["response_format"]["json_schema"]
        assert request["response_format"]["type"] == "json_schema" and schema["strict"] is True
        asked = yaml.safe_load(request["messages"][-1]["content"])
        assert {q["id"] for q in asked["quotations"]} == {q["id"] for q in _cast(tmp_path)["quotations"]}
        # the fake model gives every line to the last character it was told of: the cast holds its answers
        last = asked["characters"][-1]["name"]
        assert {(q["speaker"], q["how"]) for q in _cast(tmp_path)["quotations"]} == {(last, "model")}
        assert "model: 1 chapters asked, 0 from the cache" in first.stdout
        (tmp_path / "job.cast.yaml").unlink()
        again = run_cli("cast", str(job), env={"OPENAI_API_KEY": key})  # asked again: answered from the cache
        assert again.returncode == 0 and len(server.chats) == 1
        assert "0 chapters asked, 1 from the cache" in again.stdout
        assert json.loads(run_cli("plan", str(job), "--json").stdout)["cast"]["chapters_to_ask"] == 0
        # a run with no cast file asks the model first (here from its cache), then reads in the voices it gave
        (tmp_path / "job.cast.yaml").unlink()
        ran = run_cli("run", str(job), env={"OPENAI_API_KEY": key})
        assert ran.returncode == 0, ran.stderr
        assert len(server.chats) == 1 and {q["how"] for q in _cast(tmp_path)["quotations"]} == {"model"}
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        voiced = {c["speaker"] for c in manifest["chunks"] if c["text"].startswith('"')}
        assert voiced == {last}
    assert key not in (tmp_path / "job.cast.yaml").read_text()


def _cast(folder) -> dict:
    return yaml.safe_load((folder / "job.cast.yaml").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["unknown_names", "off_schema", "refuse", "down"])
def test_a_model_that_fails_or_strays_leaves_the_text_attribution_and_says_so(tmp_path, mode):
    from devtools.fake_openai import FakeSpeechServer, Faults

    key = "sk-test-0123456789abcdefghijklmnop"
    with FakeSpeechServer(key, Faults(chat=mode)) as server:
        result = run_cli("cast", str(_model_job(tmp_path, server.url)), env={"OPENAI_API_KEY": key})
    assert result.returncode == 0, result.stderr
    quotations = _cast(tmp_path)["quotations"]
    assert quotations and not any(q["how"] == "model" for q in quotations)
    if mode == "unknown_names":  # answers naming nobody the cast knows are not taken, one by one
        assert "warning" not in result.stderr
    else:
        assert "warning: chapter 1:" in result.stderr and "the text's attribution stands" in result.stderr
        assert key not in result.stderr


def test_attribution_with_no_character_given_learns_names_and_genders_from_the_text():
    """No cast: names come from the tags, a gender from a sentence whose subject the character is ("Tobias coiled
    the rope and shook his head"); fewer pronouns resolve, so fewer quotations are right than with the cast."""
    right = total = 0
    for paragraphs, speakers in SCENES.values():
        blocks = [Block("paragraph", p) for p in paragraphs]
        quotations = find_quotations(0, blocks)
        cast = Cast([])
        answers = attribute(blocks, quotations, cast)
        right += sum((a.speaker or "narrator") == t for a, t in zip(answers, speakers, strict=True))
        total += len(speakers)
        assert {c.name for c in cast.characters} <= set(CHARACTERS)  # no "The", "Yes" or "Supper" among them
    print(f"with no characters given: {right}/{total} ({right / total:.0%})")
    assert right / total >= 0.70
    said = ['"No," said Tobias.', "Tobias coiled the rope and shook his head.", '"Yes," he said.']
    blocks = [Block("paragraph", p) for p in said]
    learned = Cast([])
    [first, second] = attribute(blocks, find_quotations(0, blocks), learned)
    assert first.speaker == second.speaker == "Tobias" and second.how == "pronoun"
    assert [(c.name, c.gender) for c in learned.characters] == [("Tobias", "male")]


def test_a_speaker_the_cast_does_not_know_is_one_line_naming_the_quotation(tmp_path):
    """The editor's typo in the cast file ("Tobais") would read the line in the narrator's voice unnoticed."""
    paragraphs, _ = SCENES["harbour"]
    (tmp_path / "scene.md").write_text("# Harbour\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    job = write_job(tmp_path, {"sources": ["scene.md"], "output": {"dir": "out"}, "cast": {}})
    assert run_cli("cast", str(job)).returncode == 0
    path = tmp_path / "job.cast.yaml"
    cast = yaml.safe_load(path.read_text())
    cast["quotations"][0]["speaker"] = "Tobais"
    path.write_text(yaml.safe_dump(cast, sort_keys=False), encoding="utf-8")
    for command in ("cast", "plan"):
        result = run_cli(command, str(job))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert (
            f"job.cast.yaml: quotation {cast['quotations'][0]['id']}: speaker 'Tobais' is not in the cast"
            in result.stderr
        )
