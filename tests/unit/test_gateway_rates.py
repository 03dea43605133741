"""The x-ratelimit-* header values as OpenAI writes them."""

from __future__ import annotations

import pytest

from services.gateway.access.rates import RateState, duration_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0ms"), (0.017, "17ms"), (1.0, "1s"), (6.5, "6.5s"), (59.9994, "59.999s"), (60.0, "1m0s"), (90.2, "1m30s")],
)
def test_durations_read_like_openais(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_only_the_limits_a_key_has_become_headers() -> None:
    assert RateState().headers() == {}
    assert RateState(limit_tokens=1000, remaining_tokens=250, reset_tokens_s=12.0).headers() == {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "250",
        "x-ratelimit-reset-tokens": "12s",
    }
