"""The fake HuggingFace router used by the integration tests and the offline demo."""

from __future__ import annotations

from .app import FakeRouter, RecordedRequest, serve
from .chat import REASONING_TEXT, expected_text
from .faults import Fault
from .files import media_key
from .hub import MODELS, HubModel, ProviderMapping
from .media import TRANSCRIPT_TEXT, Job

__all__ = [
    "MODELS",
    "REASONING_TEXT",
    "TRANSCRIPT_TEXT",
    "Fault",
    "FakeRouter",
    "HubModel",
    "Job",
    "ProviderMapping",
    "RecordedRequest",
    "expected_text",
    "media_key",
    "serve",
]
