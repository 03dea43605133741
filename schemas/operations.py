"""What operators see and set: one event per finished request, and the per-tag defaults consumers apply live.

<prefix>.events.done.<tag>     a `DoneEvent` per finished request (core NATS, fire and forget: an event
                               nobody listens to costs nothing, and a lost one changes no answer)
KV <STREAM>_DEFAULTS, key <tag>  a `TagDefaults`: the model and routing strategy a request of the tag gets
                               when it names none; every consumer watches the bucket and applies a change to
                               the next request, without a restart
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Contract, Tag

STRATEGY_PATTERN = r"^(auto|fastest|cheapest|preferred|[a-z0-9][a-z0-9-]*)$"
Strategy = Annotated[str, msgspec.Meta(pattern=STRATEGY_PATTERN, max_length=64)]
POLICY_STRATEGIES = ("fastest", "cheapest", "preferred")
"""Router routing policies: chat and pic2text only (the router chooses among providers per request)."""


class TagDefaults(Contract, frozen=True, kw_only=True):
    """A tag's live defaults, set from the console. A request's own `model`, suffix or `provider` still wins."""

    model: str | None = None
    """Catalog name or HF model id (no suffix) a request gets when it names none; null: the catalog's default."""
    strategy: Strategy | None = None
    """The suffix a request gets when its model string has none: `auto` (no suffix, the router's own default),
    `fastest`, `cheapest`, `preferred` (chat tags), or a provider name to pin; null: what the catalog entry says."""
    updated_at: float = 0.0
    """Unix seconds of the change."""


class DoneEvent(Contract, frozen=True, kw_only=True):
    """One finished request, as the consumer that ran it saw it: what the console's live tail shows."""

    id: str
    tag: Tag
    model: str | None = None
    """The model string that was served (with its suffix), else the one asked for."""
    provider: str | None = None
    outcome: str
    """`ok`, an error code (`unauthorized`, `payment_required`, `timeout`, ...), or `handed_back` (a durable
    request a shutdown handed to another consumer)."""
    attempt: int = 1
    ttft_s: float | None = None
    """Seconds from the consumer starting the request to its first output; null when it sent none."""
    duration_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    at: float
    """Unix seconds when it finished."""
    consumer: str = ""
    """The `$SRV` id of the consumer process that ran it."""
