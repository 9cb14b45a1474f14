"""Field types for the job spec (spec.py) and for the providers' own ``voice:`` settings, with the messages a
user reads: ``must be between 0.25 and 4, got 9``, ``'wav' is not one of: m4b, mp3``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError


def kind_of(value: Any) -> str:
    """How a YAML value reads to a user: ``a mapping``, ``text``, ``true/false``..."""
    names = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def _text(value: Any) -> Any:
    # YAML reads `year: 2026` or `title: 1984` as numbers; they are text here
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise PydanticCustomError("text", "must be a string, got {kind}", {"kind": kind_of(value)})
    return value


Text = Annotated[str, BeforeValidator(_text)]


def Range(lo: float, hi: float, *, integer: bool = False) -> BeforeValidator:
    """A number in [lo, hi] (a whole one if ``integer``): ``Annotated[float, Range(0.25, 4)]``."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            wanted = "an integer" if integer else "a number"
            raise PydanticCustomError(
                "number", "must be {wanted}, got {kind}", {"wanted": wanted, "kind": kind_of(value)}
            )
        if not lo <= value <= hi:
            raise PydanticCustomError(
                "range",
                "must be between {lo} and {hi}, got {value}",
                {"lo": f"{lo:g}", "hi": f"{hi:g}", "value": value},
            )
        return value

    return BeforeValidator(check)


def _choice(value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise PydanticCustomError(
            "choice", "{value} is not one of: {choices}", {"value": repr(value), "choices": ", ".join(choices)}
        )
    return value


def OneOf(choices: Sequence[str]) -> AfterValidator:
    """Text that must be one of ``choices`` (a list the message names in full): ``Annotated[Text, OneOf(...)]``."""
    return AfterValidator(lambda value: _choice(value, choices))


def Choice(literal: Any) -> BeforeValidator:
    """For a ``Literal`` field: ``Annotated[ImageText, Choice(ImageText)]``, with OneOf's message and type check."""
    choices: tuple[str, ...] = get_args(literal)

    return BeforeValidator(lambda value: _choice(_text(value), choices))
