"""The Hub's model API (`GET /api/models/<id>`): the provider mapping table the consumer resolves ids with.

`MODELS` holds realistic entries so every provider x task adapter row is reachable through at least one model;
tests and the demo override it per router with `FakeRouter.models`. The same table tells the provider routes
which task a provider model id runs, so a route called with an id it does not map answers 404, as the router
does when a client sends the HF id where the provider id belongs (reference §13).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from .faults import json_response

MappingStatus = Literal["live", "staging", "error"]

# What `expand` may ask for here; the real Hub knows many more fields and rejects unknown ones with a 400.
_EXPANDABLE = ("inferenceProviderMapping", "pipeline_tag", "tags")


@dataclass(frozen=True)
class ProviderMapping:
    """One provider's entry in a model's `inferenceProviderMapping`."""

    provider_id: str
    """The provider's own model id, used in the provider route (the HF id for hf-inference)."""
    task: str
    status: MappingStatus = "live"

    def wire(self) -> dict[str, Any]:
        return {"status": self.status, "providerId": self.provider_id, "task": self.task, "isModelAuthor": False}


@dataclass(frozen=True)
class HubModel:
    """A Hub repo as the fake knows it: its pipeline tag and its providers, in preference order."""

    pipeline_tag: str
    providers: Mapping[str, ProviderMapping]


def _map(task: str, **ids: str | tuple[str, MappingStatus]) -> dict[str, ProviderMapping]:
    """Entries for one task; keyword names are provider names with `_` for `-`."""
    out: dict[str, ProviderMapping] = {}
    for name, value in ids.items():
        provider_id, status = value if isinstance(value, tuple) else (value, "live")
        out[name.replace("_", "-")] = ProviderMapping(provider_id, task, status)
    return out


_WHISPER_VERSION = "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"
_HUNYUAN_VERSION = "6c9132aee14409cd6568d030453f1ba50f5f3412b844fe67f78a9eb62d55664f"

_KOKORO_VERSION = "f559560eb822dc509045f3921a1921234918b91739db4bf3daab2169b71c7a13"

MODELS: dict[str, HubModel] = {
    "black-forest-labs/FLUX.1-dev": HubModel(
        "text-to-image",
        _map(
            "text-to-image",
            fal_ai="fal-ai/flux/dev",
            replicate="black-forest-labs/flux-dev",
            together="black-forest-labs/FLUX.1-dev",
            nscale=("black-forest-labs/FLUX.1-dev", "staging"),
            hf_inference="black-forest-labs/FLUX.1-dev",
            wavespeed="wavespeed-ai/flux-dev",
            deepinfra="black-forest-labs/FLUX-1-dev",
        ),
    ),
    # Z.ai's own image model; the Hub id stands for it here, as zai-org files its models under its org.
    "zai-org/GLM-Image": HubModel("text-to-image", _map("text-to-image", zai_org="glm-image")),
    "black-forest-labs/FLUX.1-Kontext-dev": HubModel(
        "image-to-image",
        _map(
            "image-to-image",
            fal_ai="fal-ai/flux-kontext/dev",
            replicate="black-forest-labs/flux-kontext-dev",
            together="black-forest-labs/FLUX.1-kontext-dev",
            hf_inference="black-forest-labs/FLUX.1-Kontext-dev",
            wavespeed="wavespeed-ai/flux-kontext-dev",
        ),
    ),
    "tencent/HunyuanVideo": HubModel(
        "text-to-video",
        _map(
            "text-to-video",
            fal_ai="fal-ai/hunyuan-video",
            novita="hunyuan-video-fast",
            # A community model on Replicate: only a pinned version runs, through /v1/predictions.
            replicate=f"tencent/hunyuan-video:{_HUNYUAN_VERSION}",
            together="tencent/HunyuanVideo",
            wavespeed="wavespeed-ai/hunyuan-video/t2v",
        ),
    ),
    "Lightricks/LTX-Video": HubModel("text-to-video", _map("text-to-video", fal_ai="fal-ai/ltx-video")),
    "Wan-AI/Wan2.1-I2V-14B-720P": HubModel(
        "image-to-video",
        _map(
            "image-to-video",
            fal_ai="fal-ai/wan-i2v",
            together="Wan-AI/Wan2.1-I2V-14B-720P",
            wavespeed="wavespeed-ai/wan-2.1/i2v-720p",
        ),
    ),
    # The Hub files MiniMax H3 under image-text-to-video, the JS client's name for image + prompt to video.
    "MiniMaxAI/MiniMax-H3": HubModel("image-text-to-video", _map("image-text-to-video", novita="MiniMax-H3")),
    "intfloat/multilingual-e5-large": HubModel(
        "feature-extraction", _map("feature-extraction", hf_inference="intfloat/multilingual-e5-large")
    ),
    "BAAI/bge-base-en-v1.5": HubModel(
        "feature-extraction",
        _map("feature-extraction", hf_inference="BAAI/bge-base-en-v1.5", together="BAAI/bge-base-en-v1.5"),
    ),
    "BAAI/bge-m3": HubModel("sentence-similarity", _map("feature-extraction", deepinfra="BAAI/bge-m3")),
    "BAAI/bge-multilingual-gemma2": HubModel(
        "feature-extraction", _map("feature-extraction", scaleway="bge-multilingual-gemma2")
    ),
    "openai/whisper-large-v3": HubModel(
        "automatic-speech-recognition",
        _map(
            "automatic-speech-recognition",
            hf_inference="openai/whisper-large-v3",
            fal_ai="fal-ai/whisper",
            replicate=f"openai/whisper:{_WHISPER_VERSION}",
            deepinfra="openai/whisper-large-v3",
            together="openai/whisper-large-v3",
        ),
    ),
    "hexgrad/Kokoro-82M": HubModel(
        "text-to-speech",
        _map(
            "text-to-speech",
            fal_ai="fal-ai/kokoro/american-english",
            deepinfra="hexgrad/Kokoro-82M",
            # A community model on Replicate: only a pinned version runs, through /v1/predictions.
            replicate=f"jaaari/kokoro-82m:{_KOKORO_VERSION}",
            together="hexgrad/Kokoro-82M",
        ),
    ),
    # Kokoro has no hf-inference deployment; MMS-TTS is the usual hf-inference text-to-speech model.
    "facebook/mms-tts-eng": HubModel("text-to-speech", _map("text-to-speech", hf_inference="facebook/mms-tts-eng")),
    "deepseek-ai/DeepSeek-R1": HubModel(
        "text-generation",
        _map(
            "conversational",
            together="deepseek-ai/DeepSeek-R1",
            novita="deepseek/deepseek-r1-turbo",
            fireworks_ai="accounts/fireworks/models/deepseek-r1",
            nscale=("deepseek-ai/DeepSeek-R1", "staging"),
        ),
    ),
    "Qwen/Qwen2.5-Coder-32B-Instruct": HubModel(
        "text-generation",
        _map(
            "conversational",
            together="Qwen/Qwen2.5-Coder-32B-Instruct",
            groq="qwen-2.5-coder-32b",
            hf_inference="Qwen/Qwen2.5-Coder-32B-Instruct",
            nscale="Qwen/Qwen2.5-Coder-32B-Instruct",
        ),
    ),
}


def find_mapping(models: Mapping[str, HubModel], provider: str, provider_id: str) -> tuple[str, ProviderMapping] | None:
    """The HF id and mapping entry whose `provider` entry has `provider_id`, whatever its status."""
    for hf_id, model in models.items():
        entry = model.providers.get(provider)
        if entry is not None and entry.provider_id == provider_id:
            return hf_id, entry
    return None


def repo_not_found() -> web.Response:
    """The Hub's 404 for an unknown or private repo; clients classify it by `X-Error-Code`."""
    message = "Repository not found"
    return json_response(404, {"error": message}, {"X-Error-Code": "RepoNotFound", "X-Error-Message": message})


def model_info(request: web.Request, models: Mapping[str, HubModel]) -> web.Response:
    """`GET /api/models/<id>[?expand[]=...]`: the expanded fields only, or a short info object without expand."""
    repo_id = request.match_info["repo"]
    model = models.get(repo_id)
    if model is None:
        return repo_not_found()
    # JS spells it expand[]=..., httpx sends expand=...; the Hub takes both (reference §3).
    expand = request.query.getall("expand[]", []) + request.query.getall("expand", [])
    unknown = [name for name in expand if name not in _EXPANDABLE]
    if unknown:
        return json_response(400, {"error": f'"expand" must be one of {", ".join(_EXPANDABLE)}; got {unknown[0]}'})
    fields: dict[str, Any] = {
        "inferenceProviderMapping": {name: entry.wire() for name, entry in model.providers.items()},
        "pipeline_tag": model.pipeline_tag,
        "tags": [model.pipeline_tag],
    }
    head = {"_id": hashlib.sha256(repo_id.encode()).hexdigest()[:24], "id": repo_id}
    if expand:
        return json_response(200, head | {name: fields[name] for name in expand})
    return json_response(200, head | {"modelId": repo_id, "pipeline_tag": model.pipeline_tag, "tags": fields["tags"]})


ACCOUNT = "hfbus-demo"
"""The account the simulated Hub says every accepted token belongs to."""


def whoami(request: web.Request) -> web.Response:
    """`GET /api/whoami-v2`: who the bearer token belongs to (the token check itself is the route's guard)."""
    return json_response(
        200,
        {
            "type": "user",
            "id": hashlib.sha256(ACCOUNT.encode()).hexdigest()[:24],
            "name": ACCOUNT,
            "fullname": "hfbus simulated account",
            "canPay": True,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "offline", "role": "fineGrained"}},
        },
    )
