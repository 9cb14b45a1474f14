"""Any local text-to-speech program that writes a WAV file, as a provider:

    voice: {provider: command, command: [piper, -m, "{model}", -i, "{text_file}", -f, "{out}"]}

Each take runs the program once with the argument list, its placeholders filled in: ``{text_file}`` (a file
holding the take's text, UTF-8), ``{out}`` (the WAV to write), ``{model}`` (the .onnx of ``voice.voice``, a
bundled piper voice by default), ``{voice}``, ``{speed}``. No shell is involved: the text never reaches a
command line. The program is looked up on PATH, then beside the running Python (a venv's ``bin/``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import string
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..core import errors, ffmpeg
from ..core.audio import read_wav
from ..core.fields import Text
from .base import (
    Events,
    Profile,
    Provider,
    ProviderContext,
    ProviderKind,
    ProviderLimits,
    TakeSink,
    VoiceSpec,
    characters_at,
)
from .local import DEFAULT_VOICE, resolve_voice

PLACEHOLDERS = ("text_file", "out", "model", "voice", "speed")
STARTUP_SECONDS = 1.5  # a process per take: piper's CLI loads its model in about 1.4 s here


def _placeholders_known(argument: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(argument) if name is not None}
    except ValueError as exc:
        raise ValueError(f"cannot read {argument!r}: {exc}") from None
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; known: {', '.join(PLACEHOLDERS)}")
    return argument


class Settings(VoiceSpec):
    command: Annotated[list[Annotated[Text, AfterValidator(_placeholders_known)]], Field(min_length=1)] = Field(
        description="the program and its arguments, e.g. [piper, -m, '{model}', -i, '{text_file}', -f, '{out}']"
    )


def find_program(name: str) -> Path | None:
    """On PATH, then beside the running interpreter; a name with a slash is a path."""
    if os.sep in name:
        return Path(name) if os.access(name, os.X_OK) else None
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    return Path(found) if found else None


class CommandProvider(Provider):
    def __init__(self, settings: Settings, context: ProviderContext):
        self.settings = settings
        program = find_program(settings.command[0])
        if program is None:
            raise errors.JobError(
                [
                    f"voice.command: program {settings.command[0]!r} not found on PATH or beside "
                    f"the running Python ({Path(sys.executable).parent})"
                ]
            )
        self.program = program
        self.model = str(resolve_voice(settings.voice)[0]) if "{model}" in " ".join(settings.command) else ""
        self.scratch = context.scratch
        speech = characters_at(15.0, settings.speed)
        self.profile = Profile(
            limits=ProviderLimits(),
            speech_seconds=speech,
            request_seconds=lambda text: STARTUP_SECONDS + speech(text) / 10.0,
            parallelism=os.cpu_count() or 1,  # a process a take: one a core
        )

    def fingerprint(self) -> dict[str, Any]:
        # the argument list as written, not as filled in: the same command is the same voice on any machine
        return {
            "provider": "command",
            "command": list(self.settings.command),
            "voice": self.settings.voice or DEFAULT_VOICE,
            "speed": self.settings.speed,
        }

    async def synthesize(self, text: str, sink: TakeSink, events: Events) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        stem = self.scratch / f"take-{uuid.uuid4().hex}"
        text_file, out = stem.with_suffix(".txt"), stem.with_suffix(".wav")
        values = {
            "text_file": str(text_file),
            "out": str(out),
            "model": self.model,
            "voice": self.settings.voice or DEFAULT_VOICE,
            "speed": f"{self.settings.speed:g}",
        }
        arguments = [str(self.program), *(a.format_map(values) for a in self.settings.command[1:])]
        try:
            text_file.write_text(text + "\n", encoding="utf-8")
            await self._run(arguments)
            await asyncio.to_thread(self._collect, out, sink)
        finally:
            text_file.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    async def _run(self, arguments: list[str]) -> None:
        name = self.settings.command[0]
        proc = await asyncio.create_subprocess_exec(
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await proc.communicate()
        except BaseException:  # the run is stopping: the program must not outlive it
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise errors.ChunkRejected(
                f"command {name!r} exited with status {proc.returncode}: {lines[-1] if lines else 'no message'}"
            )

    def _collect(self, out: Path, sink: TakeSink) -> None:
        name = self.settings.command[0]
        if not out.is_file() or out.stat().st_size == 0:
            raise errors.ChunkRejected(f"command {name!r} wrote no audio to {{out}}")
        try:
            audio = read_wav(out)
        except ValueError:  # not 16-bit mono PCM: let ffmpeg read whatever it is
            try:
                audio = ffmpeg.decode(out, 24_000)
            except errors.ToolError as exc:
                raise errors.ChunkRejected(f"command {name!r} wrote no audio ffmpeg can read: {exc}") from None
        if not audio.pcm:
            raise errors.ChunkRejected(f"command {name!r} wrote no audio to {{out}}")
        sink.write(audio.pcm, audio.rate)


KIND = ProviderKind(
    name="command",
    settings=Settings,
    create=CommandProvider,
    voices=lambda: {"command (any program that writes a WAV; {model}: a local voice)": (DEFAULT_VOICE,)},
)
