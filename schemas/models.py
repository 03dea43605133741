"""`ai.models`: ask which models a tag offers; the reply lists catalog entries for model pickers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from schemas.codec import codec_for
from schemas.common import Contract, Tag

ParamValue = int | float | str | bool
"""A default request parameter (width, steps, num_frames, voice, …)."""


class ModelsRequest(Contract, frozen=True, kw_only=True):
    """List the active catalog models of one tag, or of every tag when `tag` is null or the body is empty."""

    tag: Tag | None = None


class ModelInfo(Contract, frozen=True, kw_only=True):
    """One catalog model as a model picker shows it."""

    name: str
    """Catalog key; a request's `model` may name it instead of the HF id."""
    display_name: str
    tag: Tag
    hf_model: str
    """HuggingFace repo id, without any `:policy` / `:provider` suffix."""
    provider: str | None = None
    """Provider the catalog pins for this model; null lets the router or the Hub mapping choose."""
    policy: str | None = None
    """Chat routing policy the catalog adds (`:fastest`, `:cheapest`, `:preferred`), or null."""
    prices: dict[str, float | None] = msgspec.field(default_factory=dict)
    """USD per unit, keyed by unit (`input_per_mtok`, `output_per_mtok`, `per_image`, `per_video`,
    `per_video_second`, `per_audio_minute`, `per_mtok`, `per_mchars`); a null value means the price is unknown."""
    quality: Annotated[int, msgspec.Meta(ge=1, le=10)]
    default: bool = False
    """True for the model a request of this tag gets when it names none."""
    params: dict[str, ParamValue] = msgspec.field(default_factory=dict)
    """Defaults for the tag's request fields (e.g. `width`, `steps`, `num_frames`)."""
    description: str | None = None
    note: str | None = None
    """Caveats, e.g. why a price is null."""


class ModelsReply(Contract, frozen=True, kw_only=True):
    """The answer on `ai.models`: default model first within each tag, tags in `Tag` order."""

    models: list[ModelInfo]


def decode_models_request(data: bytes, headers: Mapping[str, str] | None = None) -> ModelsRequest:
    """Decode an `ai.models` request; an empty or whitespace-only body asks for every tag.

    Raises `msgspec.DecodeError` (or its `ValidationError`) naming the bad field, e.g. an unknown tag.
    """
    if not data.strip():
        return ModelsRequest()
    return codec_for(headers).decode_as(data, ModelsRequest)
