from pathlib import Path

import pytest

from narrator.core.errors import JobError
from narrator.job.spec import load_job
from tests.conftest import write_job


def errors_of(path: Path) -> list[str]:
    with pytest.raises(JobError) as info:
        load_job(path)
    return info.value.problems


def test_minimal_job_gets_defaults_and_resolves_paths(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.\n")
    job = load_job(write_job(tmp_path, {"sources": ["docs/a.md"], "output": {"dir": "out"}}))
    assert job.sources[0].path == tmp_path / "docs" / "a.md" and job.sources[0].format == "markdown"
    assert job.output.dir == tmp_path / "out" and job.output.formats == ("m4b", "mp3")
    assert job.voice.provider == "local" and job.chunking.max_tokens == 2000 and job.chunking.max_chars == 4096
    assert job.cache == tmp_path / ".narrator-cache"


def test_every_problem_is_one_line_naming_file_line_and_key(tmp_path):
    (tmp_path / "a.md").write_text("x")
    path = write_job(
        tmp_path,
        """\
        title: T
        sources:
          - a.md
          - path: missing.epub
          - path: a.md
            colour: blue
        voice:
          provider: elevenlabs
          speed: 9
        chunking:
          max_tokens: lots
        concurrency: 0
        output:
          dir: out
          formats: [m4b, wav]
        surprise: 1
        """,
    )
    problems = errors_of(path)
    expected = [
        ("sources[1].path", ":4:", "file not found"),
        ("sources[2].colour", ":6:", "unknown key"),
        ("voice.provider", ":8:", "'elevenlabs' is not one of: local, openai"),
        ("voice.speed", ":9:", "between 0.25 and 4"),
        ("chunking.max_tokens", ":11:", "must be an integer"),
        ("concurrency", ":12:", "between 1 and 256"),
        ("output.formats[1]", ":15:", "'wav' is not one of"),
        ("surprise", ":16:", "unknown key"),
    ]
    assert len(problems) == len(expected), problems
    for key, line, message in expected:
        hit = [p for p in problems if f" {key}: " in p]
        assert hit, (key, problems)
        assert str(path) + line in hit[0] and message in hit[0]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write_job(tmp_path, "sources: [a.md\noutput: {dir: out}\n")
    (problem,) = errors_of(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_missing_required_keys(tmp_path):
    problems = errors_of(write_job(tmp_path, "title: Only a title\n"))
    assert any("sources: required" in p for p in problems)
    assert not any("output" in p for p in problems)  # output.dir has a default


def test_output_dir_defaults_to_out_and_the_job_name_beside_the_job(tmp_path):
    (tmp_path / "a.txt").write_text("Hello.", encoding="utf-8")
    bare = load_job(write_job(tmp_path, {"sources": ["a.txt"]}, "night-reading.yaml"))
    assert bare.output.dir == tmp_path / "out" / "night-reading" and bare.output.formats == ("m4b", "mp3")
    formats_only = load_job(write_job(tmp_path, {"sources": ["a.txt"], "output": {"formats": ["mp3"]}}))
    assert formats_only.output.dir == tmp_path / "out" / "job" and formats_only.output.formats == ("mp3",)


def test_a_misspelled_key_gets_the_one_meant(tmp_path):
    (tmp_path / "a.txt").write_text("Hello.", encoding="utf-8")
    problems = errors_of(write_job(tmp_path, {"sources": ["a.txt"], "voise": {}, "output": {"formts": ["mp3"]}}))
    assert any("voise: unknown key; did you mean `voice`?" in p for p in problems), problems
    assert any("output.formts: unknown key; did you mean `formats`?" in p for p in problems), problems
    far = errors_of(write_job(tmp_path, {"sources": ["a.txt"], "zzzqqq": 1}))
    assert any("zzzqqq: unknown key; allowed:" in p for p in far), far


@pytest.mark.slow
def test_cli_validate_reports_errors_with_exit_2_and_no_traceback(tmp_path, cli):
    path = write_job(tmp_path, "sources: [nope.txt]\noutput: {dir: out}\n")
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {path}:1: sources[0]: file not found: {tmp_path / 'nope.txt'}"
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_run_with_bad_job_synthesizes_nothing(tmp_path, cli):
    (tmp_path / "a.txt").write_text("Hello.")
    path = write_job(tmp_path, {"sources": ["a.txt"], "voice": {"voice": "nobody"}, "output": {"dir": "out"}})
    result = cli("run", str(path))
    assert result.returncode == 2
    assert "unknown local voice 'nobody'" in result.stderr and "en_US-joe-medium" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / ".narrator-cache").exists()


@pytest.mark.slow
def test_cli_missing_job_file(tmp_path, cli):
    result = cli("run", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "job file not found" in result.stderr


@pytest.mark.slow
def test_every_shipped_pipeline_is_valid(cli):
    pipelines = sorted((Path(__file__).resolve().parent.parent / "pipelines").glob("*.yaml"))
    assert len(pipelines) >= 3
    for job in pipelines:
        result = cli("validate", str(job), env={"OPENAI_API_KEY": "sk-x", "RELAY_API_KEY": "sk-y"})
        assert result.returncode == 0, (job.name, result.stderr)


def test_file_length_limit_defaults_to_acxs_and_may_not_exceed_it(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    job = load_job(write_job(tmp_path, {"sources": ["a.md"], "output": {"dir": "out", "mastering": "acx"}}))
    assert job.output.max_file_minutes == 120
    job = load_job(write_job(tmp_path, {"sources": ["a.md"], "output": {"dir": "out"}}))
    assert job.output.max_file_minutes is None
    output = {"dir": "out", "mastering": "acx", "max_file_minutes": 180}
    (problem,) = errors_of(write_job(tmp_path, {"sources": ["a.md"], "output": output}))
    assert problem.endswith("output.max_file_minutes: the acx preset allows at most 120 minutes a file, got 180")


@pytest.mark.slow
def test_help_lists_every_command_with_its_whole_first_sentence(cli):
    result = cli("--help")
    assert result.returncode == 0
    listing = " ".join(result.stdout.split("Commands:")[1].split())
    assert "..." not in listing
    assert "What changed since the last build, and what a run would do: takes to request, cost, files to" in listing
