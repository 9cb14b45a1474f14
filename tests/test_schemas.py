"""The documented JSON schemas (docs/schemas/) are what the record models generate, and what real runs write
validates against them: a report of a failed run, a catalogue report, a manifest, a plan."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from devtools.fake_openai import FakeSpeechServer, Faults
from devtools.schemas import files
from tests.books import paragraph
from tests.conftest import REPO, run_cli

KEY = "sk-test-0123456789abcdefghijklmnop"


def test_the_committed_schemas_are_the_generated_ones():
    folder = REPO / "docs" / "schemas"
    for name, text in files().items():
        assert (folder / name).read_text(encoding="utf-8") == text, (
            f"docs/schemas/{name} is out of date: python -m devtools.schemas"
        )
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(files())


def _validate(record: Path, schema: str) -> None:
    data = json.loads(record.read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads((REPO / "docs" / "schemas" / schema).read_text(encoding="utf-8")))


@pytest.mark.slow
def test_what_runs_write_validates_against_the_schemas(tmp_path):
    for n in range(2):
        (tmp_path / f"b{n}.md").write_text(f"# One\n\n{paragraph(n)}\n\n# Two\n\n{paragraph(n + 5)}\n", "utf-8")
    with FakeSpeechServer(KEY, Faults(quota_after=3)) as fake:
        for n in range(2):
            spec = {"sources": [f"b{n}.md"], "voice": {"provider": "openai", "base_url": fake.url},
                    "output": {"dir": f"out{n}", "formats": ["mp3"], "mastering": "podcast"}, "cache": "cache",
                    "chunking": {"target_chars": 1}, "concurrency": 1}  # fmt: skip
            (tmp_path / f"j{n}.yaml").write_text(yaml.safe_dump(spec), "utf-8")
        ran = run_cli("run", "j0.yaml", "j1.yaml", cwd=tmp_path, env={"OPENAI_API_KEY": KEY})
        plan = run_cli("plan", "j0.yaml", "--json", cwd=tmp_path)
    assert ran.returncode == 3, ran.stderr  # the quota ran out in the second book: a failed run's report too
    (tmp_path / "plan.json").write_text(plan.stdout, "utf-8")
    _validate(tmp_path / "catalogue-report.json", "catalogue-report.v2.json")
    _validate(tmp_path / "plan.json", "plan.v2.json")
    for n in range(2):
        _validate(tmp_path / f"out{n}" / "report.json", "report.v2.json")
        _validate(tmp_path / f"out{n}" / "manifest.json", "manifest.v2.json")
    broken = json.loads((tmp_path / "out0" / "report.json").read_text())
    broken["requests"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads((REPO / "docs" / "schemas" / "report.v2.json").read_text()))
