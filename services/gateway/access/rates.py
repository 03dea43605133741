"""The values of OpenAI's `x-ratelimit-*` response headers, which every admission and refusal carries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateState:
    """The values of OpenAI's `x-ratelimit-*` headers; None where the key has no such limit."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    def headers(self) -> dict[str, str]:
        """`x-ratelimit-limit-requests`, `-remaining-requests`, `-reset-requests` and the `-tokens` ones."""
        out: dict[str, str] = {}
        for what, limit, remaining, reset in (
            ("requests", self.limit_requests, self.remaining_requests, self.reset_requests_s),
            ("tokens", self.limit_tokens, self.remaining_tokens, self.reset_tokens_s),
        ):
            if limit is not None:
                out[f"x-ratelimit-limit-{what}"] = str(limit)
                out[f"x-ratelimit-remaining-{what}"] = str(remaining)
                out[f"x-ratelimit-reset-{what}"] = duration_text(reset or 0.0)
        return out


def duration_text(seconds: float) -> str:
    """OpenAI's (Go's) duration text: `17ms`, `6s`, `1m0s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"
