"""The job file's field checks: each turns what YAML gave into the value a spec field holds, or raises pydantic's
error with the one line the user reads (spec.py gathers them, file:line: key: what is wrong)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from ..core.fields import kind_of
from ..text.document import chapter_range


def ResolvedPath(must_exist: bool) -> BeforeValidator:
    """A path resolved against the job's folder (the validation context's ``base``): ``Annotated[Path, ...]``."""

    def resolve(value: Any, info: ValidationInfo) -> Path:
        if not isinstance(value, (str, os.PathLike)):
            raise PydanticCustomError("text", "must be a path, got {kind}", {"kind": kind_of(value)})
        base = (info.context or {}).get("base", Path.cwd())  # a job file's folder; a caller's own folder
        try:
            resolved = (base / os.path.expanduser(value)).resolve()
            exists, is_file = resolved.exists(), resolved.is_file()
        # NUL bytes, lone surrogates, names too long for the file system; a symlink loop (RuntimeError before 3.13)
        except (OSError, ValueError, RuntimeError) as exc:
            shown = ascii(os.fspath(value))[:80]
            reason = str(exc)[:80]
            raise PydanticCustomError(
                "path", "not a usable path: {value} ({reason})", {"value": shown, "reason": reason}
            ) from None
        if must_exist and not exists:
            raise PydanticCustomError("path", "file not found: {path}", {"path": str(resolved)})
        if must_exist and (not is_file or not os.access(resolved, os.R_OK)):
            raise PydanticCustomError("path", "not a readable file: {path}", {"path": str(resolved)})
        return Path(resolved)

    return BeforeValidator(resolve)


def as_chapter_choice(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("chapter", "chapters count from 1, got {value}", {"value": value})
        return value
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(
            "chapter", 'a chapter number, a range like "3-5" or a title, got {kind}', {"kind": kind_of(value)}
        )
    if value.strip().isdigit():  # "3" in YAML quotes is chapter 3
        return as_chapter_choice(int(value))
    if (bounds := chapter_range(value)) and not 1 <= bounds[0] <= bounds[1]:
        raise PydanticCustomError("chapter", "a range runs from 1 upward, low to high, got {value}", {"value": value})
    return value.strip()


def as_bitrate(value: Any) -> Any:
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:] in ("k", "K"):
        return value.lower()
    raise PydanticCustomError("bitrate", "must look like 64k, got {value}", {"value": repr(value)})


def as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def as_price(value: Any) -> Any:
    return {"per_audio_hour": value} if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def as_lexicon(value: Any) -> Any:
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "lexicon", "must be a mapping of word: replacement, got {kind}", {"kind": kind_of(value)}
        )
    return value


def as_sources(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise PydanticCustomError(
            "sources", "must be a non-empty list of paths or {shape} mappings", {"shape": "{path, title, format}"}
        )
    return value


CACHE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "file")


def as_cache_location(value: Any, info: ValidationInfo) -> Path | str:
    """``cache:``: a URL of object storage stays a URL; anything else is a folder, resolved as paths are."""
    if isinstance(value, str) and "://" in value:
        scheme, _, rest = value.partition("://")
        if scheme not in CACHE_SCHEMES:
            schemes = ", ".join(f"{s}://" for s in CACHE_SCHEMES)
            raise PydanticCustomError(
                "url", "a folder or a URL of {schemes}, got {scheme}://", {"schemes": schemes, "scheme": scheme}
            )
        if "@" in rest.split("/", 1)[0] or "?" in rest:
            raise PydanticCustomError(
                "url",
                "credentials do not go in the job file: use the environment "
                "(AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, a profile)",
            )
        if not rest.strip("/"):
            raise PydanticCustomError(
                "url", "name the bucket (and a prefix): {scheme}://bucket/prefix", {"scheme": scheme}
            )
        return value.rstrip("/")
    resolved: Path = ResolvedPath(must_exist=False).func(value, info)  # type: ignore[call-arg]
    return resolved


def no_word() -> Any:
    raise PydanticCustomError("word", "a lexicon word must be non-empty text")
