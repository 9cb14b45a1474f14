"""The run as Markdown for a CI job's summary page: appended to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub
Actions renders it on the run's page). Books, what changed, cost and failures; nothing secret."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..core.records import CatalogueBook

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def _cell(text: str) -> str:
    """Table cells hold one line without pipes."""
    return " ".join(text.split()).replace("|", "\\|")


def markdown(books: Sequence[CatalogueBook], heading: str = "narrator") -> str:
    failing = [b for b in books if b.exit_code != 0]
    cost = sum(b.cost_usd for b in books)
    requests = sum(b.requests for b in books)
    lines = [
        f"## {_cell(heading)}",
        "",
        f"{len(books)} book(s), {len(books) - len(failing)} done; {requests} request(s), about ${cost:.4f} spent.",
        "",
        "| Book | Status | Changes | Requests | Files encoded | Cost (USD) |",
        "|---|---|---|--:|--:|--:|",
    ]
    for book in books:
        status = "done" if book.exit_code == 0 else f"exit {book.exit_code}"
        changes = ", ".join(f"{n} {kind}" for kind, n in book.changes.items()) or "none"
        lines.append(
            f"| {_cell(book.title)} (`{_cell(book.job)}`) | {status} | {changes} | {book.requests} | "
            f"{book.files_encoded} | {book.cost_usd:.4f} |"
        )
    if failing:
        lines += ["", "### Failures", ""]
        lines += [f"- **{_cell(book.title)}** (`{_cell(book.job)}`): {_cell(book.message)}" for book in failing]
    return "\n".join(lines) + "\n"


def append_step_summary(books: Sequence[CatalogueBook], heading: str = "narrator") -> None:
    """Append to the file ``$GITHUB_STEP_SUMMARY`` names, if any (as GitHub's own steps do: one file per step)."""
    target = os.environ.get(STEP_SUMMARY, "").strip()
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as summary:
        summary.write(markdown(books, heading) + "\n")
