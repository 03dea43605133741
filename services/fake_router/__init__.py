"""The fake HuggingFace router used by the integration tests and the offline demo."""

from __future__ import annotations

from .app import FakeRouter, RecordedRequest, serve
from .chat import REASONING_TEXT, expected_text
from .faults import Fault

__all__ = ["REASONING_TEXT", "Fault", "FakeRouter", "RecordedRequest", "expected_text", "serve"]
