"""Problems with a job file as a user reads them: ``file:line: key.path: message``, one line each, from pydantic's
validation errors or from spec.py's own checks."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.fields import kind_of


class Problems:
    """Problem lines, each ``file:line: key.path: message``, from pydantic's errors or our own checks."""

    def __init__(self, job_path: Path, lines: dict[str, int]):
        self.job_path = job_path
        self.lines = lines
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        line = self.lines.get(key) or self.lines.get(key.rsplit(".", 1)[0].rsplit("[", 1)[0])
        where = f"{self.job_path}:{line}" if line else str(self.job_path)
        self.problems.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def extend(self, problems: list[tuple[str, str]]) -> None:
        for key, message in problems:
            self.add(key, message)

    def add_all(self, exc: ValidationError, raw: Any, model: type[BaseModel], prefix: tuple[str, ...] = ()) -> None:
        for error in exc.errors(include_url=False):
            loc = (*prefix, *error["loc"])
            loc = _as_written(loc, raw)
            key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            self.add(key, _message(error, loc[len(prefix) :], model, raw))


def _as_written(loc: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
    """Cut a key path where the YAML had a plain value that a model expanded (``- book.epub`` is read as
    ``{path: book.epub}``): the user wrote ``sources[0]``, not ``sources[0].path``."""
    for depth, part in enumerate(loc):
        if (isinstance(raw, dict) and part in raw) or (
            isinstance(raw, list) and isinstance(part, int) and part < len(raw)
        ):
            raw = raw[part]
        else:
            return loc if isinstance(raw, (dict, list)) else loc[:depth]
    return loc


def unknown_key(key: str, allowed: list[str]) -> str:
    """``unknown key``, the allowed keys, and the one meant when the key is a slip of the hand (difflib's ratio
    of at least 0.6: ``voise``, ``formts``, ``Voice``)."""
    close = difflib.get_close_matches(key.lower(), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return "unknown key" + hint + (f"; allowed: {', '.join(allowed)}" if allowed else "")


def _message(error: Any, loc: tuple[Any, ...], model: type[BaseModel], raw: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        field = _field_of(model, loc)
        return f"required: {field.description}" if field is not None and field.description else "required"
    if kind == "extra_forbidden":
        allowed = _model_at(model, loc[:-1])
        keys = [name for name, f in allowed.model_fields.items() if not f.exclude] if allowed else []
        return unknown_key(str(loc[-1]) if loc else "", keys)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping, got {kind_of(error['input'])}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, got {kind_of(error['input'])}"
    if kind == "too_short":
        return "must not be empty"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {kind_of(error['input'])}"
    return str(error["msg"]).removeprefix("Value error, ")


_TYPE_NAMES = {
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "true or false",
}


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the value at ``loc`` (for the keys it allows)."""
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_of(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    parent = _model_at(model, loc[:-1])
    return parent.model_fields.get(str(loc[-1])) if parent is not None and loc else None
