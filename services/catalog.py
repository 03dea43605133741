"""The model catalog: `catalog.json` decoded into frozen structs, model resolution, and cost from its prices.

Pure: no network, no settings; the only I/O is reading the data file in `Catalog.load`. Handlers resolve a
request's `model` with `Catalog.resolve`, price the billed usage with `cost_usd`, and `ai.models` answers
with `Catalog.describe`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.common import Tag, TokenUsage
from schemas.models import ModelInfo, ModelsReply, ParamValue

__all__ = [
    "CATALOG_ENV",
    "POLICIES",
    "Catalog",
    "CatalogError",
    "CatalogModel",
    "InvalidModelError",
    "Prices",
    "Resolved",
    "UnknownModelError",
    "cost_usd",
]

CATALOG_ENV = "HFBUS_CATALOG"
"""Environment variable naming a catalog file to use instead of the packaged one."""

POLICIES = frozenset({"fastest", "cheapest", "preferred"})
"""Router routing policies: a `:<suffix>` outside this set pins a provider."""

CHAT_TAGS = frozenset({Tag.CHAT, Tag.PIC2TEXT})
"""Tags served by `/v1/chat/completions`, the only route that understands a policy suffix."""

Price = Annotated[float, msgspec.Meta(ge=0)]
# A price field that is absent means "not billed in this unit"; null means "billed, price unknown".
MaybePrice = Price | None | UnsetType
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
HfModelId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
ProviderName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]*$")]
Policy = Literal[":fastest", ":cheapest", ":preferred"]

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ENTRY_PATH = re.compile(r"\$\.models\[(\d+)\]")


class CatalogError(ValueError):
    """The catalog file is unusable; the message names the file and the offending entry or field."""


class UnknownModelError(LookupError):
    """A request's `model` names no usable catalog model for its tag; the message lists what the tag offers."""


class InvalidModelError(ValueError):
    """A request's `model` string is malformed (empty, not `owner/name`, bad suffix)."""


class Prices(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, repr_omit_defaults=True):
    """USD per unit; only the units a model is billed in are present."""

    input_per_mtok: MaybePrice = UNSET
    output_per_mtok: MaybePrice = UNSET
    per_mtok: MaybePrice = UNSET
    """Embeddings: per million input tokens."""
    per_image: MaybePrice = UNSET
    per_video: MaybePrice = UNSET
    per_video_second: MaybePrice = UNSET
    per_audio_minute: MaybePrice = UNSET
    per_mchars: MaybePrice = UNSET
    """Text-to-speech: per million input characters."""

    def declared(self) -> dict[str, float | None]:
        """The units this model is billed in, with their price (None when unknown)."""
        return {key: value for key in self.__struct_fields__ if (value := getattr(self, key)) is not UNSET}


class CatalogModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One catalog entry, as written in `catalog.json`."""

    name: Name
    """Catalog key; never contains `/` or `:`, so it cannot be mistaken for an HF id."""
    display_name: Annotated[str, msgspec.Meta(min_length=1)]
    tag: Tag
    hf_model: HfModelId
    prices: Prices
    quality: Annotated[int, msgspec.Meta(ge=1, le=10)]
    service: Literal["huggingface"] = "huggingface"
    provider: ProviderName | None = None
    """Pinned provider; null lets the router (chat) or the Hub mapping (other tags) choose."""
    policy: Policy | None = None
    """Chat routing policy appended to the model string when the request gives no suffix."""
    default: bool = False
    active: bool = True
    params: dict[str, ParamValue] = msgspec.field(default_factory=dict)
    """Defaults for the tag's request fields (width, steps, num_frames, voice, …)."""
    description: str | None = None
    note: str | None = None


class PricingSource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the prices came from, kept so an operator can tell how stale they are."""

    source: str
    currency: Literal["USD"] = "USD"
    updated: str | None = None


class CatalogFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole data file."""

    version: Literal[1]
    models: list[CatalogModel]
    pricing: PricingSource | None = None


class Resolved(msgspec.Struct, frozen=True, kw_only=True):
    """A request's `model` made concrete."""

    hf_model: str
    """HF repo id without suffix: what the Hub mapping and non-chat provider routes take."""
    model_string: str
    """What chat sends to `/v1/chat/completions`: the repo id plus the request's or the catalog's suffix."""
    provider: str | None = None
    """Pinned provider (from a `:<provider>` suffix or the entry); None when a policy or the router chooses."""
    entry: CatalogModel | None = None
    """The catalog entry, or None for an HF id the catalog does not list for this tag (cost then unknown)."""


_DECODER = msgspec.json.Decoder(CatalogFile)

# (units every entry of the tag must declare, units it may declare); prices declared null are still "declared".
_TOKENS = frozenset({"input_per_mtok", "output_per_mtok"})
_VIDEO = frozenset({"per_video", "per_video_second"})
_UNITS: dict[Tag, tuple[frozenset[str], frozenset[str]]] = {
    Tag.CHAT: (_TOKENS, _TOKENS),
    Tag.PIC2TEXT: (_TOKENS, _TOKENS),
    Tag.VECTORIZE: (frozenset({"per_mtok"}), frozenset({"per_mtok"})),
    Tag.TEXT2PIC: (frozenset({"per_image"}), frozenset({"per_image"})),
    Tag.PIC2PIC: (frozenset({"per_image"}), frozenset({"per_image"})),
    Tag.TEXT2VID: (frozenset(), _VIDEO),
    Tag.PIC2VID: (frozenset(), _VIDEO),
    Tag.SOUND2TEXT: (frozenset({"per_audio_minute"}), frozenset({"per_audio_minute"})),
    Tag.TEXT2SOUND: (frozenset({"per_mchars"}), frozenset({"per_mchars"})),
}
_TAG_ORDER = {tag: index for index, tag in enumerate(Tag)}


class Catalog:
    """The validated set of catalog models with lookups by tag, name and HF id."""

    __slots__ = ("_by_hf", "_by_name", "_defaults", "_models", "source")

    def __init__(self, models: Iterable[CatalogModel], *, source: str = "<memory>") -> None:
        """Validate and index `models`; raises `CatalogError` naming the first bad entry."""
        listed = list(models)
        _validate(listed, source)
        self.source = source
        # Tag order, then the default first, then file order: what pickers and `for_tag` show.
        self._models = sorted(listed, key=lambda m: (_TAG_ORDER[m.tag], not m.default))
        self._by_name = {m.name: m for m in listed}
        self._defaults = {m.tag: m for m in listed if m.default}
        self._by_hf: dict[tuple[Tag, str], CatalogModel] = {}
        for m in self._models:
            if m.active:
                # Hub ids are case-insensitive; the first (default-first) active entry wins for shared ids.
                self._by_hf.setdefault((m.tag, m.hf_model.casefold()), m)

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Load `path`, else the file `HFBUS_CATALOG` names, else the packaged `catalog.json`.

        Raises `CatalogError` when the file cannot be read, decoded or validated.
        """
        if path is None and (env := os.environ.get(CATALOG_ENV, "").strip()):
            path = Path(env)
        if path is None:
            return cls.from_json(
                resources.files("services").joinpath("catalog.json").read_bytes(), source="catalog.json"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CatalogError(f"cannot read catalog file {path}: {exc.strerror or exc}") from exc
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: bytes, *, source: str = "<bytes>") -> Catalog:
        """Decode and validate catalog JSON; raises `CatalogError` naming `source` and the bad entry."""
        try:
            file = _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{source}: {_entry_of(data, str(exc))}{exc}") from exc
        except msgspec.DecodeError as exc:
            raise CatalogError(f"{source}: not valid JSON: {exc}") from exc
        return cls(file.models, source=source)

    def default(self, tag: Tag) -> CatalogModel:
        """The model a request of `tag` gets when it names none; raises `UnknownModelError` if the tag has none."""
        try:
            return self._defaults[tag]
        except KeyError:
            raise UnknownModelError(f"the model catalog has no {tag} model") from None

    def for_tag(self, tag: Tag | None, *, active_only: bool = True) -> list[CatalogModel]:
        """The models of `tag` (all tags when None), default first within each tag."""
        return [m for m in self._models if (tag is None or m.tag is tag) and (m.active or not active_only)]

    def resolve(
        self, tag: Tag, model: str | None, *, default_model: str | None = None, strategy: str | None = None
    ) -> Resolved:
        """Turn a request's `model` (None, a catalog name or an HF id, each with an optional suffix) into a `Resolved`.

        A suffix in the request wins over the entry's pinned provider or policy. An HF id the catalog does not
        list for `tag` still resolves, with `entry` None. Raises `InvalidModelError` for a malformed string and
        `UnknownModelError` for a name that is not an active catalog model of `tag`.

        The operator's live defaults (the console, `schemas.operations.TagDefaults`) come in between:
        `default_model` replaces the catalog's default when the request names no model, and `strategy` (`auto`
        for no suffix, a policy, or a provider) replaces the entry's provider or policy when the request's model
        has no suffix of its own.
        """
        suffix: str | None = None
        if model is None and default_model:
            model = default_model
        if model is None:
            default = self.default(tag)
            entry: CatalogModel | None = default
            base = default.hf_model
        else:
            base, suffix = _split(model)
            entry = self._find(tag, base)
        hf_model = entry.hf_model if entry is not None else base
        if suffix is None and strategy is not None:
            suffix = None if strategy == "auto" else strategy
        elif suffix is None and entry is not None:
            suffix = entry.provider or (entry.policy[1:] if entry.policy else None)
        return Resolved(
            hf_model=hf_model,
            model_string=hf_model if suffix is None else f"{hf_model}:{suffix}",
            provider=suffix if suffix is not None and suffix not in POLICIES else None,
            entry=entry,
        )

    def describe(self, tag: Tag | None = None) -> ModelsReply:
        """The `ai.models` reply: the active models of `tag`, or of every tag when None."""
        return ModelsReply(models=[_info(m) for m in self.for_tag(tag)])

    def _find(self, tag: Tag, base: str) -> CatalogModel | None:
        named = self._by_name.get(base)
        if named is not None:
            if named.tag is not tag:
                raise UnknownModelError(f"model {base!r} is a {named.tag} model, not {tag}; {self._offer(tag)}")
            if not named.active:
                raise UnknownModelError(f"model {base!r} is inactive; {self._offer(tag)}")
            return named
        if "/" not in base:
            raise UnknownModelError(
                f"model {base!r} is neither a catalog name nor an HF model id (owner/name); {self._offer(tag)}"
            )
        if not _HF_ID.match(base):
            raise InvalidModelError(f"model {base!r} is not a valid HF model id (owner/name)")
        return self._by_hf.get((tag, base.casefold()))

    def _offer(self, tag: Tag) -> str:
        names = [m.name for m in self.for_tag(tag)]
        return f"{tag} models: {', '.join(names)}" if names else f"the catalog has no {tag} model"


def cost_usd(
    entry: CatalogModel | None,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    tokens: int = 0,
    images: int = 0,
    video_seconds: float = 0.0,
    videos: int = 0,
    audio_seconds: float = 0.0,
    characters: int = 0,
) -> float | None:
    """USD for the billed usage, summed over the units `entry` is priced in, rounded to 8 decimals.

    None when `entry` is None, declares no unit, or any of its prices is null: a partial sum would read as
    a real, too-low cost.
    """
    if entry is None:
        return None
    prices = entry.prices.declared()
    if not prices or any(price is None for price in prices.values()):
        return None
    quantities = {
        "input_per_mtok": prompt_tokens / 1e6,
        "output_per_mtok": completion_tokens / 1e6,
        "per_mtok": tokens / 1e6,
        "per_image": float(images),
        "per_video": float(videos),
        "per_video_second": video_seconds,
        "per_audio_minute": audio_seconds / 60,
        "per_mchars": characters / 1e6,
    }
    return round(sum((price or 0.0) * quantities[unit] for unit, price in prices.items()), 8)


def token_cost(entry: CatalogModel | None, usage: TokenUsage) -> float | None:
    """`cost_usd` of a chat's token usage."""
    return cost_usd(entry, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)


def _split(model: str) -> tuple[str, str | None]:
    base, colon, suffix = model.strip().partition(":")
    if not base:
        raise InvalidModelError("model is empty; omit it to use the tag's default")
    if not colon:
        return base, None
    suffix = suffix.lower()
    if not _SUFFIX.match(suffix):
        raise InvalidModelError(
            f"model {model!r} has a bad suffix; expected :fastest, :cheapest, :preferred or :<provider>"
        )
    return base, suffix


def _validate(models: list[CatalogModel], source: str) -> None:
    seen: dict[str, int] = {}
    for index, m in enumerate(models):
        where = f"{source}: entry {index} ({m.name!r})"
        if m.name in seen:
            raise CatalogError(f"{where}: name already used by entry {seen[m.name]}")
        seen[m.name] = index
        required, allowed = _UNITS[m.tag]
        declared = set(m.prices.declared())
        if not declared or not declared <= allowed or not required <= declared:
            wanted = (
                f"must list {', '.join(sorted(required))}" if required else f"take {' and/or '.join(sorted(allowed))}"
            )
            raise CatalogError(
                f"{where}: prices of a {m.tag} model {wanted} (null when unknown); "
                f"got {', '.join(sorted(declared)) or 'none'}"
            )
        if m.policy is not None and m.tag not in CHAT_TAGS:
            raise CatalogError(f"{where}: policy applies only to chat and pic2text models")
        if m.policy is not None and m.provider is not None:
            raise CatalogError(f"{where}: set either provider or policy, not both")
        if m.provider in POLICIES:
            raise CatalogError(f"{where}: provider {m.provider!r} is a policy; write it as policy ':{m.provider}'")
    for tag in sorted({m.tag for m in models}, key=_TAG_ORDER.__getitem__):
        defaults = [(index, m) for index, m in enumerate(models) if m.tag is tag and m.default]
        if len(defaults) != 1:
            named = ", ".join(f"entry {index} ({m.name!r})" for index, m in defaults) or "none"
            raise CatalogError(f"{source}: tag {tag} needs exactly one default model; defaults: {named}")
        index, m = defaults[0]
        if not m.active:
            raise CatalogError(f"{source}: entry {index} ({m.name!r}): the {tag} default must be active")


def _entry_of(data: bytes, message: str) -> str:
    # msgspec names the path (`$.models[3].prices`) but not the entry; the entry's name is what a human looks for.
    match = _ENTRY_PATH.search(message)
    if match is None:
        return ""
    index = int(match.group(1))
    try:
        raw: Any = msgspec.json.decode(data)
        name = raw["models"][index]["name"]
    except (msgspec.DecodeError, LookupError, TypeError):
        name = None
    return f"entry {index} ({name!r}): " if isinstance(name, str) else f"entry {index}: "


def _info(m: CatalogModel) -> ModelInfo:
    return ModelInfo(
        name=m.name,
        display_name=m.display_name,
        tag=m.tag,
        hf_model=m.hf_model,
        provider=m.provider,
        policy=m.policy,
        prices=m.prices.declared(),
        quality=m.quality,
        default=m.default,
        params=dict(m.params),
        description=m.description,
        note=m.note,
    )
