"""The editor's desk: decisions kept in a review file beside the job (``decisions``), the book as the review page
sees it (``desk``), and the page's server (``server``). ``run`` reads only the decisions.
"""

from .decisions import (
    ReviewFile,
    Status,
    TakeDecision,
    decision_for,
    load_review,
    review_counts,
    review_path,
    review_state,
    stale_decisions,
    text_hash,
    update_review,
)

__all__ = [
    "ReviewFile",
    "Status",
    "TakeDecision",
    "decision_for",
    "load_review",
    "review_counts",
    "review_path",
    "review_state",
    "stale_decisions",
    "text_hash",
    "update_review",
]
