"""The JSON schemas of what a run writes and the review page is sent, generated from their models (records.py,
review/payloads.py), into docs/schemas/: ``python -m devtools.schemas [FOLDER]``. A test checks that the committed
files are these, so a change to a record that forgets its schema fails CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from narrator.core.records import SCHEMA, CatalogueReport, Manifest, Plan, Report
from narrator.review.payloads import PAYLOADS

RECORDS: dict[str, type[BaseModel]] = {
    "manifest": Manifest,
    "report": Report,
    "catalogue-report": CatalogueReport,
    "plan": Plan,
    **PAYLOADS,  # what the review page's API sends
}


def schema_of(name: str) -> dict[str, Any]:
    schema = RECORDS[name].model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://narrator.invalid/schemas/{name}.v{SCHEMA}.json", **schema}  # fmt: skip


def files() -> dict[str, str]:
    """File name -> text, for every record."""
    return {f"{name}.v{SCHEMA}.json": json.dumps(schema_of(name), indent=2, sort_keys=True) + "\n" for name in RECORDS}


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (folder / name).write_text(text, encoding="utf-8")
        print(folder / name)


if __name__ == "__main__":
    main()
