"""The model catalog: the shipped data file, resolution of request model strings, cost, and `ai.models`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.common import Tag
from schemas.models import ModelInfo, ModelsReply, ModelsRequest, decode_models_request
from services.catalog import (
    CATALOG_ENV,
    Catalog,
    CatalogError,
    CatalogModel,
    InvalidModelError,
    Prices,
    UnknownModelError,
    cost_usd,
)

SHIPPED = Path(__file__).parents[2] / "services" / "catalog.json"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(SHIPPED)


def shipped_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED.read_text())
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    return path


def entry(name: str, tag: Tag = Tag.TEXT2PIC, **fields: Any) -> CatalogModel:
    values: dict[str, Any] = {
        "display_name": name,
        "hf_model": f"org/{name}",
        "prices": Prices(per_image=0.01),
        "quality": 5,
        "default": True,
        **fields,
    }
    return CatalogModel(name=name, tag=tag, **values)


# --- the shipped file ---------------------------------------------------------------------------------------------


def test_the_packaged_file_loads_without_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    packaged = Catalog.load()
    assert [m.name for m in packaged.for_tag(None)] == [m.name for m in Catalog.load(SHIPPED).for_tag(None)]


@pytest.mark.parametrize("tag", list(Tag))
def test_every_tag_has_exactly_one_active_default(catalog: Catalog, tag: Tag) -> None:
    defaults = [m for m in catalog.for_tag(tag, active_only=False) if m.default]
    assert len(defaults) == 1
    assert defaults[0].active
    assert catalog.default(tag) is defaults[0]


@pytest.mark.parametrize(
    ("tag", "hf_model"),
    [
        (Tag.CHAT, "deepseek-ai/DeepSeek-R1"),
        (Tag.PIC2TEXT, "Qwen/Qwen2.5-VL-7B-Instruct"),
        (Tag.VECTORIZE, "intfloat/multilingual-e5-large"),
        (Tag.TEXT2PIC, "black-forest-labs/FLUX.1-dev"),
        (Tag.TEXT2VID, "tencent/HunyuanVideo"),
        (Tag.PIC2PIC, "black-forest-labs/FLUX.1-Kontext-dev"),
        (Tag.PIC2VID, "Wan-AI/Wan2.1-I2V-14B-720P"),
        (Tag.SOUND2TEXT, "openai/whisper-large-v3"),
        (Tag.TEXT2SOUND, "hexgrad/Kokoro-82M"),
    ],
)
def test_the_default_of_each_tag_is_the_chosen_model(catalog: Catalog, tag: Tag, hf_model: str) -> None:
    assert catalog.default(tag).hf_model == hf_model


@pytest.mark.parametrize(
    ("display_name", "tag", "hf_model", "prices", "quality"),
    [
        ("DeepSeek R1", Tag.CHAT, "deepseek-ai/DeepSeek-R1", {"input_per_mtok": 0.55, "output_per_mtok": 2.19}, 10),
        ("FLUX.1 Dev", Tag.TEXT2PIC, "black-forest-labs/FLUX.1-dev", {"per_image": 0.035}, 10),
        ("HunyuanVideo", Tag.TEXT2VID, "tencent/HunyuanVideo", {"per_video": 0.50}, 10),
        ("FLUX.1 Kontext", Tag.PIC2PIC, "black-forest-labs/FLUX.1-Kontext-dev", {"per_image": 0.04}, 10),
        (
            "Qwen2.5 Coder 32B",
            Tag.CHAT,
            "Qwen/Qwen2.5-Coder-32B-Instruct",
            {"input_per_mtok": 0.20, "output_per_mtok": 0.80},
            9,
        ),
    ],
)
def test_the_seed_plan_models_carry_its_prices(
    catalog: Catalog, display_name: str, tag: Tag, hf_model: str, prices: dict[str, float], quality: int
) -> None:
    (found,) = [m for m in catalog.for_tag(tag) if m.display_name == display_name]
    assert found.hf_model == hf_model
    assert found.service == "huggingface"
    assert found.prices.declared() == prices
    assert found.quality == quality


def test_deepseek_r1_routes_to_the_fastest_provider_as_the_seed_plan_says(catalog: Catalog) -> None:
    assert catalog.default(Tag.CHAT).policy == ":fastest"


def test_every_null_price_is_explained_by_a_note(catalog: Catalog) -> None:
    unpriced = [m for m in catalog.for_tag(None, active_only=False) if None in m.prices.declared().values()]
    assert {m.name for m in unpriced} >= {"qwen2.5-vl-7b", "multilingual-e5-large", "whisper-large-v3"}
    assert all(m.note for m in unpriced)


def test_the_env_variable_points_load_at_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = shipped_json()
    data["models"] = [m for m in data["models"] if m["tag"] == "chat"]
    monkeypatch.setenv(CATALOG_ENV, str(write(tmp_path, data)))
    assert {m.tag for m in Catalog.load().for_tag(None)} == {Tag.CHAT}
    # An explicit path wins over the environment.
    assert len({m.tag for m in Catalog.load(SHIPPED).for_tag(None)}) == len(Tag)


# --- resolution -------------------------------------------------------------------------------------------------


def test_no_model_resolves_to_the_default_with_its_policy(catalog: Catalog) -> None:
    resolved = catalog.resolve(Tag.CHAT, None)
    assert resolved.hf_model == "deepseek-ai/DeepSeek-R1"
    assert resolved.model_string == "deepseek-ai/DeepSeek-R1:fastest"
    assert resolved.provider is None
    assert resolved.entry is not None and resolved.entry.name == "deepseek-r1"


@pytest.mark.parametrize("model", ["deepseek-r1", "deepseek-ai/DeepSeek-R1", "deepseek-ai/deepseek-r1"])
def test_a_catalog_name_and_its_hf_id_find_the_same_entry(catalog: Catalog, model: str) -> None:
    resolved = catalog.resolve(Tag.CHAT, model)
    assert resolved.entry is catalog.default(Tag.CHAT)
    assert resolved.hf_model == "deepseek-ai/DeepSeek-R1"
    assert resolved.model_string == "deepseek-ai/DeepSeek-R1:fastest"


@pytest.mark.parametrize(
    ("model", "model_string", "provider"),
    [
        ("deepseek-ai/DeepSeek-R1:cheapest", "deepseek-ai/DeepSeek-R1:cheapest", None),
        ("deepseek-ai/DeepSeek-R1:preferred", "deepseek-ai/DeepSeek-R1:preferred", None),
        ("deepseek-ai/DeepSeek-R1:groq", "deepseek-ai/DeepSeek-R1:groq", "groq"),
        ("deepseek-r1:Groq", "deepseek-ai/DeepSeek-R1:groq", "groq"),
        ("Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct", None),
        ("qwen2.5-coder-32b:together", "Qwen/Qwen2.5-Coder-32B-Instruct:together", "together"),
    ],
)
def test_the_request_suffix_wins_over_the_catalog_policy(
    catalog: Catalog, model: str, model_string: str, provider: str | None
) -> None:
    resolved = catalog.resolve(Tag.CHAT, model)
    assert resolved.entry is not None
    assert resolved.hf_model == model_string.partition(":")[0]
    assert resolved.model_string == model_string
    assert resolved.provider == provider


@pytest.mark.parametrize(
    ("model", "model_string", "provider"),
    [
        ("openai/gpt-oss-120b", "openai/gpt-oss-120b", None),
        ("openai/gpt-oss-120b:groq", "openai/gpt-oss-120b:groq", "groq"),
        ("openai/gpt-oss-120b:cheapest", "openai/gpt-oss-120b:cheapest", None),
    ],
)
def test_an_hf_id_outside_the_catalog_still_resolves(
    catalog: Catalog, model: str, model_string: str, provider: str | None
) -> None:
    resolved = catalog.resolve(Tag.CHAT, model)
    assert resolved.entry is None
    assert resolved.hf_model == "openai/gpt-oss-120b"
    assert resolved.model_string == model_string
    assert resolved.provider == provider


def test_a_pinned_provider_in_the_entry_is_used_unless_the_request_overrides_it() -> None:
    pinned = Catalog([entry("flux", provider="fal-ai")])
    assert pinned.resolve(Tag.TEXT2PIC, "flux").provider == "fal-ai"
    assert pinned.resolve(Tag.TEXT2PIC, None).model_string == "org/flux:fal-ai"
    assert pinned.resolve(Tag.TEXT2PIC, "org/flux:replicate").provider == "replicate"


def test_an_hf_id_of_another_tag_resolves_without_an_entry(catalog: Catalog) -> None:
    resolved = catalog.resolve(Tag.CHAT, "Qwen/Qwen2.5-VL-7B-Instruct")
    assert resolved.entry is None and resolved.hf_model == "Qwen/Qwen2.5-VL-7B-Instruct"


@pytest.mark.parametrize(
    ("tag", "model", "named"),
    [
        (Tag.TEXT2PIC, "deepseek-r1", "is a chat model, not text2pic; text2pic models: flux.1-dev"),
        (Tag.CHAT, "deepseek-r2", "neither a catalog name nor an HF model id"),
    ],
)
def test_an_unknown_catalog_name_is_refused_naming_what_exists(
    catalog: Catalog, tag: Tag, model: str, named: str
) -> None:
    with pytest.raises(UnknownModelError, match=named):
        catalog.resolve(tag, model)


def test_an_inactive_entry_cannot_be_named_but_its_hf_id_passes_through() -> None:
    two = Catalog([entry("flux"), entry("old", default=False, active=False)])
    with pytest.raises(UnknownModelError, match="'old' is inactive; text2pic models: flux"):
        two.resolve(Tag.TEXT2PIC, "old")
    assert two.resolve(Tag.TEXT2PIC, "org/old").entry is None


@pytest.mark.parametrize("model", ["", "  ", ":groq", "deepseek-ai/DeepSeek-R1:", "a/b:x:y", "a/b/c", "a b/c"])
def test_a_malformed_model_string_is_invalid(catalog: Catalog, model: str) -> None:
    with pytest.raises(InvalidModelError):
        catalog.resolve(Tag.CHAT, model)


# --- cost ---------------------------------------------------------------------------------------------------------


def by_name(catalog: Catalog, name: str) -> CatalogModel:
    (found,) = [m for m in catalog.for_tag(None, active_only=False) if m.name == name]
    return found


@pytest.mark.parametrize(
    ("name", "usage", "expected"),
    [
        # 1000 x 0.55 / 1e6 + 500 x 2.19 / 1e6 = 0.00055 + 0.001095
        ("deepseek-r1", {"prompt_tokens": 1000, "completion_tokens": 500}, 0.001645),
        # 2e6 x 0.20 / 1e6 + 1e6 x 0.80 / 1e6 = 0.40 + 0.80
        ("qwen2.5-coder-32b", {"prompt_tokens": 2_000_000, "completion_tokens": 1_000_000}, 1.2),
        # 1 x 0.55 / 1e6, kept to 8 decimals
        ("deepseek-r1", {"prompt_tokens": 1}, 0.00000055),
        # 3 x 0.035
        ("flux.1-dev", {"images": 3}, 0.105),
        # 2 x 0.04
        ("flux.1-kontext-dev", {"images": 2}, 0.08),
        # 1 x 0.50; the seconds do not matter for a per-video price
        ("hunyuanvideo", {"videos": 1, "video_seconds": 5.0}, 0.5),
        # 4 x 0.25
        ("ltx-video", {"videos": 4}, 1.0),
        # nothing billed, nothing owed
        ("flux.1-dev", {}, 0.0),
    ],
)
def test_cost_from_the_seed_prices(catalog: Catalog, name: str, usage: dict[str, Any], expected: float) -> None:
    assert cost_usd(by_name(catalog, name), **usage) == expected


@pytest.mark.parametrize(
    ("prices", "usage", "expected"),
    [
        # 90 s at 0.006 per minute = 1.5 x 0.006
        (Prices(per_audio_minute=0.006), {"audio_seconds": 90.0}, 0.009),
        # 250_000 tokens at 0.02 per million = 0.25 x 0.02
        (Prices(per_mtok=0.02), {"tokens": 250_000}, 0.005),
        # 2000 characters at 15 per million = 0.002 x 15
        (Prices(per_mchars=15.0), {"characters": 2000}, 0.03),
        # 6 s at 0.08 per second
        (Prices(per_video_second=0.08), {"video_seconds": 6.0}, 0.48),
    ],
)
def test_cost_per_unit_kind(prices: Prices, usage: dict[str, Any], expected: float) -> None:
    tags = {"per_audio_minute": Tag.SOUND2TEXT, "per_mtok": Tag.VECTORIZE, "per_mchars": Tag.TEXT2SOUND}
    tag = tags.get(next(iter(prices.declared())), Tag.TEXT2VID)
    assert cost_usd(entry("m", tag, prices=prices), **usage) == expected


@pytest.mark.parametrize("name", ["qwen2.5-vl-7b", "multilingual-e5-large", "whisper-large-v3", "kokoro-82m"])
def test_cost_is_unknown_when_the_price_is_null(catalog: Catalog, name: str) -> None:
    assert cost_usd(by_name(catalog, name), prompt_tokens=10, tokens=10, audio_seconds=60, characters=10) is None


def test_cost_is_unknown_without_an_entry() -> None:
    assert cost_usd(None, prompt_tokens=1000) is None


def test_cost_is_unknown_when_one_of_two_token_prices_is_null() -> None:
    half = entry("half", Tag.CHAT, prices=Prices(input_per_mtok=1.0, output_per_mtok=None))
    assert cost_usd(half, prompt_tokens=1000) is None


# --- a broken data file ---------------------------------------------------------------------------------------------


def break_flux(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    for model in data["models"]:
        if model["name"] == "flux.1-dev":
            model.update(changes)
    return data


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"prices": {"per_imgae": 0.035}}, r"entry \d+ \('flux.1-dev'\): Object contains unknown field `per_imgae`"),
        ({"qualty": 10}, r"entry \d+ \('flux.1-dev'\): Object contains unknown field `qualty`"),
        ({"tag": "text2picture"}, r"entry \d+ \('flux.1-dev'\): Invalid enum value 'text2picture'"),
        ({"quality": 11}, r"entry \d+ \('flux.1-dev'\): .*<= 10 - at `\$\.models\[\d+\]\.quality`"),
        ({"prices": {"per_image": -1}}, r"entry \d+ \('flux.1-dev'\): .*>= 0"),
        ({"hf_model": "FLUX.1-dev"}, r"entry \d+ \('flux.1-dev'\): .*`\$\.models\[\d+\]\.hf_model`"),
        ({"policy": "fastest"}, r"entry \d+ \('flux.1-dev'\): Invalid enum value 'fastest'"),
        ({"policy": ":fastest"}, r"entry \d+ \('flux.1-dev'\): policy applies only to chat and pic2text"),
        ({"prices": {"per_video": 0.5}}, r"entry \d+ \('flux.1-dev'\): prices of a text2pic model must list per_image"),
        ({"prices": {}}, r"entry \d+ \('flux.1-dev'\): prices .* got none"),
        ({"provider": "cheapest"}, r"entry \d+ \('flux.1-dev'\): provider 'cheapest' is a policy"),
        ({"name": "deepseek-r1"}, r"entry \d+ \('deepseek-r1'\): name already used by entry 0"),
        ({"default": False}, r"tag text2pic needs exactly one default model; defaults: none"),
        ({"active": False}, r"entry \d+ \('flux.1-dev'\): the text2pic default must be active"),
    ],
)
def test_a_broken_data_file_fails_naming_the_entry(tmp_path: Path, change: dict[str, Any], named: str) -> None:
    path = write(tmp_path, break_flux(shipped_json(), **change))
    with pytest.raises(CatalogError, match=named) as raised:
        Catalog.load(path)
    assert str(path) in str(raised.value)


def test_two_defaults_for_one_tag_are_both_named(tmp_path: Path) -> None:
    data = shipped_json()
    for model in data["models"]:
        if model["name"] == "qwen2.5-coder-32b":
            model["default"] = True
    with pytest.raises(CatalogError, match=r"chat needs exactly one default.*'deepseek-r1'.*'qwen2.5-coder-32b'"):
        Catalog.load(write(tmp_path, data))


def test_a_file_that_is_not_json_or_missing_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        Catalog.load(path)
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        Catalog.load(tmp_path / "missing.json")


# --- ai.models ----------------------------------------------------------------------------------------------------


def test_describe_filters_by_tag(catalog: Catalog) -> None:
    reply = catalog.describe(Tag.TEXT2VID)
    assert [(m.name, m.default) for m in reply.models] == [("hunyuanvideo", True), ("ltx-video", False)]
    assert reply.models[0].prices == {"per_video": 0.5}
    assert reply.models[0].params == {"num_frames": 129}


def test_describe_without_a_tag_lists_every_tag_in_order_default_first(catalog: Catalog) -> None:
    models = catalog.describe().models
    assert [m.tag for m in models if m.default] == list(Tag)
    first_of_tag: dict[Tag, ModelInfo] = {}
    for m in models:
        first_of_tag.setdefault(m.tag, m)
    assert all(m.default for m in first_of_tag.values())


def test_describe_leaves_out_inactive_models() -> None:
    two = Catalog([entry("flux"), entry("old", default=False, active=False)])
    assert [m.name for m in two.describe(Tag.TEXT2PIC).models] == ["flux"]


def test_the_models_reply_round_trips_with_null_prices(catalog: Catalog) -> None:
    wire = msgspec.json.encode(catalog.describe(Tag.PIC2TEXT))
    assert b'"prices":{"input_per_mtok":null,"output_per_mtok":null}' in wire
    assert msgspec.json.decode(wire, type=ModelsReply) == catalog.describe(Tag.PIC2TEXT)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"", ModelsRequest()), (b"{}", ModelsRequest()), (b'{"tag":"pic2pic"}', ModelsRequest(tag=Tag.PIC2PIC))],
)
def test_a_models_request_may_be_empty(body: bytes, expected: ModelsRequest) -> None:
    assert decode_models_request(body) == expected


def test_a_models_request_with_an_unknown_tag_is_refused_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.tag"):
        decode_models_request(b'{"tag":"chatt"}')


@pytest.mark.parametrize(
    ("model", "default_model", "strategy", "expected", "provider"),
    [
        (None, None, "cheapest", "deepseek-ai/DeepSeek-R1:cheapest", None),
        (None, None, "auto", "deepseek-ai/DeepSeek-R1", None),
        (None, None, "together", "deepseek-ai/DeepSeek-R1:together", "together"),
        (None, "qwen2.5-coder-32b", None, "Qwen/Qwen2.5-Coder-32B-Instruct", None),
        (None, "qwen2.5-coder-32b", "preferred", "Qwen/Qwen2.5-Coder-32B-Instruct:preferred", None),
        ("deepseek-r1", "qwen2.5-coder-32b", "cheapest", "deepseek-ai/DeepSeek-R1:cheapest", None),
        ("deepseek-r1:groq", None, "cheapest", "deepseek-ai/DeepSeek-R1:groq", "groq"),
        ("org/outside", None, "fastest", "org/outside:fastest", None),
    ],
)
def test_the_live_defaults_sit_between_the_request_and_the_catalog(
    catalog: Catalog,
    model: str | None,
    default_model: str | None,
    strategy: str | None,
    expected: str,
    provider: str | None,
) -> None:
    resolved = catalog.resolve(Tag.CHAT, model, default_model=default_model, strategy=strategy)

    assert (resolved.model_string, resolved.provider) == (expected, provider)
