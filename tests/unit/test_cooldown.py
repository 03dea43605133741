"""Cooldowns: consecutive failures set a provider aside; a success clears it."""

from __future__ import annotations

from services.hf.cooldown import Cooldowns


def test_a_provider_is_cooled_after_the_threshold_and_ordered_last() -> None:
    cooldowns = Cooldowns(threshold=2, cooldown_s=60)
    cooldowns.failed("fal-ai")
    assert cooldowns.order(["fal-ai", "replicate"]) == ["fal-ai", "replicate"]
    cooldowns.failed("fal-ai")
    assert cooldowns.is_cooling("fal-ai")
    assert cooldowns.order(["fal-ai", "replicate", "together"]) == ["replicate", "together", "fal-ai"]


def test_a_success_ends_the_cooldown_and_resets_the_count() -> None:
    cooldowns = Cooldowns(threshold=2, cooldown_s=60)
    cooldowns.failed("fal-ai")
    cooldowns.succeeded("fal-ai")
    cooldowns.failed("fal-ai")
    assert not cooldowns.is_cooling("fal-ai")


def test_a_cooldown_expires() -> None:
    cooldowns = Cooldowns(threshold=1, cooldown_s=0.0)
    cooldowns.failed("fal-ai")
    assert not cooldowns.is_cooling("fal-ai")
