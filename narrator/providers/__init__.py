"""Speech providers, chosen by name in the job's ``voice.provider``."""

from __future__ import annotations

from ..spec import VoiceSpec
from .base import Provider, ProviderLimits


def create_provider(spec: VoiceSpec, *, concurrency: int = 4) -> Provider:
    if spec.provider == "local":
        from .local import LocalProvider

        return LocalProvider(spec)
    if spec.provider == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider(spec, concurrency=concurrency)
    raise ValueError(f"unknown provider {spec.provider!r}")


__all__ = ["Provider", "ProviderLimits", "create_provider"]
