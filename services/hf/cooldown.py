"""Providers that keep failing are set aside for a while, so requests go to the next live one first."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Cooldowns:
    """Consecutive failures per provider; `threshold` in a row cools a provider for `cooldown_s`."""

    threshold: int = 3
    cooldown_s: float = 30.0
    _failures: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def failed(self, provider: str) -> None:
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._until[provider] = time.monotonic() + self.cooldown_s
            self._failures[provider] = 0

    def succeeded(self, provider: str) -> None:
        self._failures.pop(provider, None)
        self._until.pop(provider, None)

    def is_cooling(self, provider: str) -> bool:
        until = self._until.get(provider)
        return until is not None and until > time.monotonic()

    def order(self, providers: list[str]) -> list[str]:
        """Healthy providers first, in their given order; cooling ones last (still tried if nothing else works)."""
        return sorted(providers, key=self.is_cooling)
