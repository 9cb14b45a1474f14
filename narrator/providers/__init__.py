"""Speech providers, by the name a job gives in ``voice.provider``: one line each. A provider's module defines
``KIND`` (see base.ProviderKind); spec, plan, costs, the pipeline and the CLI ask this registry, and nothing
else in narrator names a provider."""

from __future__ import annotations

import importlib

from .base import Provider, ProviderContext, ProviderKind, VoiceSpec

PROVIDERS: dict[str, str] = {
    "local": "narrator.providers.local",  # piper, offline: the default
    "openai": "narrator.providers.openai",  # any OpenAI-compatible /audio/speech endpoint
    "command": "narrator.providers.command",  # any local program that writes a WAV
}


def provider_kind(name: str) -> ProviderKind[VoiceSpec]:
    """The registry entry for ``name`` (one of PROVIDERS); imports only that provider's module."""
    kind: ProviderKind[VoiceSpec] = importlib.import_module(PROVIDERS[name]).KIND
    return kind


def create_provider(settings: VoiceSpec, context: ProviderContext) -> Provider:
    """The provider the settings name, configured; raises JobError for settings it cannot work with."""
    return provider_kind(settings.provider).create(settings, context)


__all__ = ["PROVIDERS", "Provider", "ProviderContext", "ProviderKind", "VoiceSpec", "create_provider", "provider_kind"]
