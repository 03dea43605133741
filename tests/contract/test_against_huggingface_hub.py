"""Every provider x task flow, checked against what huggingface_hub 2.4.0 itself sends for the same call.

Both sides run the whole flow (submit, polls, result fetch, download) against the same canned upstream:

* huggingface_hub through its public `InferenceClient` methods, with its real URLs; its shared httpx2 client is
  built exactly like `default_client_factory` builds it, but on a local `MockTransport` that records every
  request and answers from the canned replies (Hub mapping lookups included), so nothing leaves the process.
* hfbus through the adapter's `prepare`/`parse` loop, the calls it returns recorded as the executor would send them.

Then the recorded requests must be equal, one by one: method, URL (scheme, host, path, query), whether the token
goes along, the headers that matter (everything but Authorization, User-Agent, X-Amzn-Trace-Id and the
transport's own headers), and the body (parsed JSON, or the raw bytes). The final outputs must be equal too,
which checks hfbus's reply parsing against the client's `get_response` for every flow.

Where hfbus deliberately sends something else, the case lists the `Difference` with its reason; the test checks
that huggingface_hub really sends the listed value before swapping in hfbus's, so a table entry cannot go stale.
Real mismatches that look like hfbus bugs are strict xfails.

huggingface_hub is a dev-only dependency; without it (or with an older one) the module is skipped.
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

pytest.importorskip("huggingface_hub", minversion="2.4")

import httpx2
import orjson
from huggingface_hub import InferenceClient, constants
from huggingface_hub.inference import _client as hf_client
from huggingface_hub.inference._providers import PROVIDERS as HF_PROVIDERS
from huggingface_hub.inference._providers import _common as hf_common
from huggingface_hub.inference._providers import fal_ai as hf_fal_ai
from huggingface_hub.inference._providers import hf_inference as hf_hf_inference
from huggingface_hub.inference._providers import together as hf_together
from huggingface_hub.inference._providers import wavespeed as hf_wavespeed
from huggingface_hub.inference._providers import zai_org as hf_zai_org
from huggingface_hub.utils import _http as hf_http

from services.hf.providers import (
    PROVIDERS,
    Download,
    HttpCall,
    HttpReply,
    Media,
    Pending,
    Task,
    TaskInput,
    Transcript,
    Vectors,
    floats_of,
    get_adapter,
)

ROUTER = "https://router.huggingface.co"
ROUTER_TOKEN = "hf_contract_router_token"
"""The `api_key` given to InferenceClient; starting with `hf_`, it routes through the router."""
HUB_TOKEN = "hf_contract_hub_token"
"""HF_TOKEN for the client's Hub lookups (it reads the environment there, not `api_key`)."""

# Headers the comparison leaves out: the token (compared as `authenticated` instead), client identification,
# huggingface_hub's per-request trace id, and what the HTTP library adds by itself.
IGNORED_HEADERS = frozenset(
    {"authorization", "user-agent", "x-amzn-trace-id", "host", "content-length", "accept-encoding", "connection"}
)
TRANSPORT_ACCEPT = "*/*"
"""httpx2 and aiohttp both send `Accept: */*` when the caller sets none, so it counts as no Accept."""

PROMPT = "a lighthouse at dawn"
TEXT = "Hello from the bus."
TEXTS = ["first text", "second text"]
INPUT_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR input image"
INPUT_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF input image"
INPUT_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00 input audio"
INPUT_WAV = b"RIFF\x24\x00\x00\x00WAVEfmt  input audio"
INPUT_FLAC = b"fLaC\x00\x00\x00\x22 input audio"
IMAGE_URL = "https://example.com/inputs/photo.png"
AUDIO_URL = "https://example.com/inputs/speech.flac"
OUT_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR generated image"
OUT_MP4 = b"\x00\x00\x00\x20ftypisom generated video"
OUT_FLAC = b"fLaC\x00\x00\x00\x22 generated speech"
TRANSCRIPT = "hello world"
VECTORS = [[0.6, 0.8, 0.0], [0.0, 0.28, 0.96]]
"""Unit vectors, so a client that normalizes locally gets the provider's own values back."""

# The request fields of the public schemas (text2pic, pic2pic, text2vid, pic2vid), as TaskInput fields and as
# the keyword arguments of the matching InferenceClient method.
TEXT2PIC = {"negative_prompt": "blurry", "width": 768, "height": 512, "steps": 20, "guidance_scale": 3.5, "seed": 42}
HF_TEXT2PIC = {
    "negative_prompt": "blurry",
    "width": 768,
    "height": 512,
    "num_inference_steps": 20,
    "guidance_scale": 3.5,
    "seed": 42,
}
PIC2PIC = {"negative_prompt": "blurry", "steps": 20, "guidance_scale": 3.5, "seed": 42}
HF_PIC2PIC = {"negative_prompt": "blurry", "num_inference_steps": 20, "guidance_scale": 3.5, "seed": 42}
TEXT2VID = {"negative_prompt": "blurry", "num_frames": 81, "seed": 42}
PIC2VID = {"num_frames": 81, "seed": 42}

Wire = dict[str, Any]
"""One recorded request: method, url, authenticated, headers, body."""
Reply = tuple[int, str, bytes]
"""A canned reply: status, Content-Type, body."""
Routes = dict[tuple[str, str], list[Reply]]
HfCall = Callable[[InferenceClient, str, "Files"], Any]
"""The same request through huggingface_hub's public API, given the client, the HF model id and a place for files."""


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()
"""A `Difference` value meaning "the key is not there"."""


@dataclass(frozen=True)
class Difference:
    """One intended way hfbus's request differs from huggingface_hub's, pinned on both sides.

    `where` is a path into the `call`-th recorded request, e.g. `("body", "audio_url")` or
    `("headers", "content-type")`.
    """

    where: tuple[str | int, ...]
    hf: Any
    hfbus: Any
    reason: str
    call: int = 0


@dataclass(frozen=True)
class Case:
    """One provider x task flow, with the same input on both sides and the upstream's canned replies."""

    provider: str
    task: Task
    hf_model: str
    provider_id: str
    fields: dict[str, Any]
    """TaskInput fields besides task, provider_model and hf_model."""
    hf_call: HfCall
    routes: Routes
    variant: str = ""
    differences: tuple[Difference, ...] = ()
    xfail: str = ""
    """Set for a mismatch that looks like an hfbus bug: the case is a strict xfail with this reason."""
    pipeline_tag: str = ""
    """hf-inference only: the `pipeline_tag` the Hub reports (default: the task)."""
    tags: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.task}" + (f"[{self.variant}]" if self.variant else "")

    def task_input(self) -> TaskInput:
        return TaskInput(task=self.task, provider_model=self.provider_id, hf_model=self.hf_model, **self.fields)


# --- canned upstream replies ---------------------------------------------------------------------------------


def js(obj: Any, status: int = 200) -> Reply:
    return status, "application/json", json.dumps(obj).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{b64(data)}"


def download(url: str, content_type: str, data: bytes) -> Routes:
    return {("GET", url): [(200, content_type, data)]}


def fal_sync(app: str, result: dict[str, Any]) -> Routes:
    return {("POST", f"{ROUTER}/fal-ai/{app}"): [js(result)]}


def fal_queue(app: str, request_path: str, result: dict[str, Any]) -> Routes:
    """fal's queue; `request_path` (from response_url) differs from the app id, as fal's often does."""
    queue = "?_subdomain=queue"
    base = f"{ROUTER}/fal-ai{request_path}"
    queued = {
        "request_id": request_path.rsplit("/", 1)[-1],
        "status": "IN_QUEUE",
        "response_url": f"https://queue.fal.run{request_path}",
        "status_url": f"https://queue.fal.run{request_path}/status",
        "cancel_url": f"https://queue.fal.run{request_path}/cancel",
        "queue_position": 2,
    }
    return {
        ("POST", f"{ROUTER}/fal-ai/{app}{queue}"): [js(queued)],
        ("GET", f"{base}/status{queue}"): [js({"status": "IN_PROGRESS"}), js({"status": "COMPLETED"})],
        ("GET", f"{base}{queue}"): [js(result)],
    }


def hf_inference(path: str, reply: Reply) -> Routes:
    return {("POST", f"{ROUTER}/hf-inference/models/{path}"): [reply]}


def replicate(route: str, output: Any) -> Routes:
    prediction = {"id": "pred-1", "status": "succeeded", "output": output, "error": None}
    return {("POST", f"{ROUTER}/replicate{route}"): [js(prediction, 201)]}


def together_images() -> Routes:
    return {("POST", f"{ROUTER}/together/v1/images/generations"): [js({"data": [{"b64_json": b64(OUT_PNG)}]})]}


def together_video(video_url: str) -> Routes:
    done = {"id": "vid-1", "status": "completed", "outputs": {"video_url": video_url}}
    return {
        ("POST", f"{ROUTER}/together/v2/videos"): [js({"id": "vid-1", "status": "queued"})],
        ("GET", f"{ROUTER}/together/v2/videos/vid-1"): [js({"id": "vid-1", "status": "in_progress"}), js(done)],
    }


def wavespeed(model: str, output_url: str) -> Routes:
    def job(status: str, outputs: list[str]) -> Reply:
        urls = {"get": "https://api.wavespeed.ai/api/v3/predictions/ws-1/result"}
        data = {"id": "ws-1", "model": model, "status": status, "outputs": outputs, "urls": urls}
        return js({"code": 200, "message": "success", "data": data})

    return {
        ("POST", f"{ROUTER}/wavespeed/api/v3/{model}"): [job("created", [])],
        ("GET", f"{ROUTER}/wavespeed/api/v3/predictions/ws-1/result"): [
            job("processing", []),
            job("completed", [output_url]),
        ],
    }


def embeddings(route: str) -> Routes:
    data = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(VECTORS)]
    return {("POST", f"{ROUTER}{route}"): [js({"object": "list", "data": data})]}


def zai(image_url: str) -> Routes:
    def task(status: str) -> Reply:
        body: dict[str, Any] = {"model": "glm-image", "id": "zai-1", "request_id": "r-1", "task_status": status}
        if status == "SUCCESS":
            body["image_result"] = [{"url": image_url}]
        return js(body)

    return {
        ("POST", f"{ROUTER}/zai-org/api/paas/v4/async/images/generations"): [task("PROCESSING")],
        ("GET", f"{ROUTER}/zai-org/api/paas/v4/async-result/zai-1"): [task("PROCESSING"), task("SUCCESS")],
    }


class Files:
    """Media saved under a name: how a huggingface_hub caller passes media of a known type (from the extension)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, data: bytes, name: str) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


FAL_IMAGE = "https://v3.fal.media/files/out.png"
FAL_VIDEO = "https://v3.fal.media/files/out.mp4"
FAL_AUDIO = "https://v3.fal.media/files/out.flac"
REPLICATE_IMAGE = "https://replicate.delivery/xezq/out.png"
REPLICATE_VIDEO = "https://replicate.delivery/xezq/out.mp4"
TOGETHER_VIDEO = "https://api.together.ai/shrt/out.mp4"
WAVESPEED_IMAGE = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/ws-1/out.png"
WAVESPEED_VIDEO = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/ws-1/out.mp4"
NOVITA_VIDEO = "https://faas-output-video.s3.ap-southeast-1.amazonaws.com/out.mp4"

ZAI_IMAGE = "https://aigc-files.bigmodel.cn/api/cogview/out.png"
SEGMENTS_REPLY = {"text": TRANSCRIPT, "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": TRANSCRIPT}]}
TEI_OPTIONS = "its OpenAI-style embeddings API has no TEI options; hfbus drops {} (and normalizes the vectors itself)"
KOKORO_VERSION = "f559560eb822dc509045f3921a1921234918b91739db4bf3daab2169b71c7a13"
TRANSCRIPT_REPLY = {"text": TRANSCRIPT, "chunks": [{"text": TRANSCRIPT, "timestamp": [0.0, 1.5]}]}
EMPTY_PARAMETERS = (
    "hfbus leaves out an empty `parameters` object; huggingface_hub's filter_none keeps the emptied dict"
    " (the pipeline reads both alike)"
)
WAVESPEED_LABEL = (
    "hfbus labels the data URL with the image's sniffed type; huggingface_hub's wavespeed helper calls any bytes"
    " image/jpeg (reference §9.2)"
)

# --- the cases: one per provider x task row, plus variants for the branches that change the wire ------------

CASES: list[Case] = [
    # deepinfra
    Case(
        "deepinfra",
        "automatic-speech-recognition",
        "openai/whisper-large-v3",
        "openai/whisper-large-v3",
        {"media": INPUT_FLAC, "media_type": "audio/flac", "language": "en"},
        lambda c, m, f: c.automatic_speech_recognition(
            f(INPUT_FLAC, "speech.flac"), model=m, extra_body={"language": "en"}
        ),
        {("POST", f"{ROUTER}/deepinfra/v1/openai/audio/transcriptions"): [js(SEGMENTS_REPLY)]},
    ),
    Case(
        "deepinfra",
        "feature-extraction",
        "BAAI/bge-m3",
        "BAAI/bge-m3",
        {"texts": TEXTS},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m),
        embeddings("/deepinfra/v1/openai/embeddings"),
    ),
    Case(
        "deepinfra",
        "feature-extraction",
        "BAAI/bge-m3",
        "BAAI/bge-m3",
        {"texts": TEXTS, "normalize": True, "truncate": True},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m, normalize=True, truncate=True),
        embeddings("/deepinfra/v1/openai/embeddings"),
        variant="normalize",
        differences=(
            Difference(("body", "normalize"), hf=True, hfbus=ABSENT, reason=TEI_OPTIONS.format("normalize")),
            Difference(("body", "truncate"), hf=True, hfbus=ABSENT, reason=TEI_OPTIONS.format("truncate")),
        ),
    ),
    Case(
        "deepinfra",
        "text-to-speech",
        "hexgrad/Kokoro-82M",
        "hexgrad/Kokoro-82M",
        {"text": TEXT, "voice": "af_heart"},
        lambda c, m, f: c.text_to_speech(TEXT, model=m, extra_body={"voice": "af_heart"}),
        {("POST", f"{ROUTER}/deepinfra/v1/openai/audio/speech"): [(200, "audio/flac", OUT_FLAC)]},
    ),
    # fal-ai
    Case(
        "fal-ai",
        "automatic-speech-recognition",
        "openai/whisper-large-v3",
        "fal-ai/whisper",
        {"media": INPUT_MP3, "media_type": "audio/mpeg", "language": "en"},
        lambda c, m, f: c.automatic_speech_recognition(INPUT_MP3, model=m, extra_body={"language": "en"}),
        fal_sync("fal-ai/whisper", TRANSCRIPT_REPLY),
    ),
    Case(
        "fal-ai",
        "automatic-speech-recognition",
        "openai/whisper-large-v3",
        "fal-ai/whisper",
        {"media": INPUT_WAV, "media_type": "audio/wav"},
        # Bytes, not a file: this helper takes no file object, and labels every input alike anyway.
        lambda c, m, f: c.automatic_speech_recognition(INPUT_WAV, model=m),
        fal_sync("fal-ai/whisper", TRANSCRIPT_REPLY),
        variant="wav",
        differences=(
            Difference(
                ("body", "audio_url"),
                hf=data_url("audio/mpeg", INPUT_WAV),
                hfbus=data_url("audio/x-wav", INPUT_WAV),
                reason="fal decodes a data URL by its label and refuses audio/wav; hfbus labels WAV audio/x-wav as"
                " the JS client does, huggingface_hub labels all audio audio/mpeg (reference §9.4)",
            ),
        ),
    ),
    Case(
        "fal-ai",
        "automatic-speech-recognition",
        "openai/whisper-large-v3",
        "fal-ai/whisper",
        {"media": INPUT_FLAC, "media_type": "audio/flac", "media_url": AUDIO_URL},
        lambda c, m, f: c.automatic_speech_recognition(AUDIO_URL, model=m),
        fal_sync("fal-ai/whisper", TRANSCRIPT_REPLY),
        variant="url",
    ),
    Case(
        "fal-ai",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "fal-ai/flux-kontext/dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2PIC},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), PROMPT, model=m, **HF_PIC2PIC),
        fal_queue("fal-ai/flux-kontext/dev", "/fal-ai/flux-kontext/requests/req-i2i", {"images": [{"url": FAL_IMAGE}]})
        | download(FAL_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "fal-ai",
        "image-to-video",
        "Wan-AI/Wan2.2-I2V-A14B",
        "fal-ai/wan/v2.2-a14b/image-to-video",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2VID},
        lambda c, m, f: c.image_to_video(f(INPUT_PNG, "photo.png"), model=m, prompt=PROMPT, **PIC2VID),
        fal_queue("fal-ai/wan/v2.2-a14b/image-to-video", "/fal-ai/wan/requests/req-i2v", {"video": {"url": FAL_VIDEO}})
        | download(FAL_VIDEO, "video/mp4", OUT_MP4),
    ),
    Case(
        "fal-ai",
        "image-to-video",
        "Wan-AI/Wan2.2-I2V-A14B",
        "fal-ai/wan/v2.2-a14b/image-to-video",
        {"media": INPUT_PNG, "media_type": "image/png", "media_url": IMAGE_URL},
        lambda c, m, f: c.image_to_video(IMAGE_URL, model=m),
        fal_queue("fal-ai/wan/v2.2-a14b/image-to-video", "/fal-ai/wan/requests/req-i2v", {"video": {"url": FAL_VIDEO}})
        | download(FAL_VIDEO, "video/mp4", OUT_MP4),
        variant="url",
    ),
    Case(
        "fal-ai",
        "text-to-image",
        "black-forest-labs/FLUX.1-dev",
        "fal-ai/flux/dev",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        fal_sync("fal-ai/flux/dev", {"images": [{"url": FAL_IMAGE}]}) | download(FAL_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "fal-ai",
        "text-to-speech",
        "hexgrad/Kokoro-82M",
        "fal-ai/kokoro/american-english",
        {"text": TEXT, "voice": "af_heart"},
        lambda c, m, f: c.text_to_speech(TEXT, model=m, extra_body={"voice": "af_heart"}),
        fal_sync("fal-ai/kokoro/american-english", {"audio": {"url": FAL_AUDIO}})
        | download(FAL_AUDIO, "audio/flac", OUT_FLAC),
    ),
    Case(
        "fal-ai",
        "text-to-video",
        "Wan-AI/Wan2.2-T2V-A14B",
        "fal-ai/wan/v2.2-a14b/text-to-video",
        {"prompt": PROMPT, **TEXT2VID},
        lambda c, m, f: c.text_to_video(PROMPT, model=m, **TEXT2VID),
        fal_queue("fal-ai/wan/v2.2-a14b/text-to-video", "/fal-ai/wan/requests/req-t2v", {"video": {"url": FAL_VIDEO}})
        | download(FAL_VIDEO, "video/mp4", OUT_MP4),
    ),
    # hf-inference
    Case(
        "hf-inference",
        "automatic-speech-recognition",
        "openai/whisper-large-v3-turbo",
        "openai/whisper-large-v3-turbo",
        {"media": INPUT_FLAC, "media_type": "audio/flac"},
        lambda c, m, f: c.automatic_speech_recognition(f(INPUT_FLAC, "speech.flac"), model=m),
        hf_inference("openai/whisper-large-v3-turbo", js(TRANSCRIPT_REPLY)),
    ),
    Case(
        "hf-inference",
        "automatic-speech-recognition",
        "openai/whisper-large-v3-turbo",
        "openai/whisper-large-v3-turbo",
        {"media": INPUT_FLAC, "media_type": "audio/flac", "language": "en"},
        lambda c, m, f: c.automatic_speech_recognition(
            f(INPUT_FLAC, "speech.flac"), model=m, extra_body={"generate_kwargs": {"language": "en"}}
        ),
        hf_inference("openai/whisper-large-v3-turbo", js(TRANSCRIPT_REPLY)),
        variant="language",
    ),
    Case(
        "hf-inference",
        "feature-extraction",
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        {"texts": TEXTS, "normalize": True, "truncate": True},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m, normalize=True, truncate=True),
        hf_inference("sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction", js(VECTORS)),
        # A sentence-transformers repo: the Hub calls it sentence-similarity and tags it feature-extraction.
        pipeline_tag="sentence-similarity",
        tags=("sentence-transformers", "feature-extraction", "sentence-similarity"),
    ),
    Case(
        "hf-inference",
        "image-to-image",
        "timbrooks/instruct-pix2pix",
        "timbrooks/instruct-pix2pix",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2PIC},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), PROMPT, model=m, **HF_PIC2PIC),
        hf_inference("timbrooks/instruct-pix2pix", (200, "image/png", OUT_PNG)),
    ),
    Case(
        "hf-inference",
        "image-to-image",
        "timbrooks/instruct-pix2pix",
        "timbrooks/instruct-pix2pix",
        {"media": INPUT_PNG, "media_type": "image/png"},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), model=m),
        hf_inference("timbrooks/instruct-pix2pix", (200, "image/png", OUT_PNG)),
        variant="raw",
    ),
    Case(
        "hf-inference",
        "text-to-image",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "stabilityai/stable-diffusion-xl-base-1.0",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        hf_inference("stabilityai/stable-diffusion-xl-base-1.0", (200, "image/png", OUT_PNG)),
    ),
    Case(
        "hf-inference",
        "text-to-image",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "stabilityai/stable-diffusion-xl-base-1.0",
        {"prompt": PROMPT},
        lambda c, m, f: c.text_to_image(PROMPT, model=m),
        hf_inference("stabilityai/stable-diffusion-xl-base-1.0", (200, "image/png", OUT_PNG)),
        variant="prompt-only",
        differences=(Difference(("body", "parameters"), hf={}, hfbus=ABSENT, reason=EMPTY_PARAMETERS),),
    ),
    Case(
        "hf-inference",
        "text-to-speech",
        "facebook/mms-tts-eng",
        "facebook/mms-tts-eng",
        {"text": TEXT},
        lambda c, m, f: c.text_to_speech(TEXT, model=m),
        hf_inference("facebook/mms-tts-eng", (200, "audio/flac", OUT_FLAC)),
        differences=(Difference(("body", "parameters"), hf={}, hfbus=ABSENT, reason=EMPTY_PARAMETERS),),
    ),
    Case(
        "hf-inference",
        "text-to-speech",
        "facebook/mms-tts-eng",
        "facebook/mms-tts-eng",
        {"text": TEXT, "options": {"temperature": 0.5}},
        lambda c, m, f: c.text_to_speech(TEXT, model=m, temperature=0.5),
        hf_inference("facebook/mms-tts-eng", (200, "audio/flac", OUT_FLAC)),
        variant="options",
    ),
    # novita
    Case(
        "novita",
        "text-to-video",
        "Wan-AI/Wan2.1-T2V-14B",
        "wan-t2v",
        {"prompt": PROMPT, **TEXT2VID},
        lambda c, m, f: c.text_to_video(PROMPT, model=m, **TEXT2VID),
        {
            ("POST", f"{ROUTER}/novita/v3/hf/wan-t2v"): [
                js({"video": {"video_url": NOVITA_VIDEO, "video_url_ttl": "3600", "video_type": "mp4"}})
            ]
        }
        | download(NOVITA_VIDEO, "video/mp4", OUT_MP4),
    ),
    # nscale
    Case(
        "nscale",
        "text-to-image",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "stabilityai/stable-diffusion-xl-base-1.0",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        {("POST", f"{ROUTER}/nscale/v1/images/generations"): [js({"data": [{"b64_json": b64(OUT_PNG)}]})]},
    ),
    # replicate
    Case(
        "replicate",
        "automatic-speech-recognition",
        "openai/whisper-large-v3",
        "openai/whisper:8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e",
        {"media": INPUT_WAV, "media_type": "audio/wav", "language": "en"},
        lambda c, m, f: c.automatic_speech_recognition(INPUT_WAV, model=m, extra_body={"language": "en"}),
        replicate(
            "/v1/predictions",
            {"transcription": TRANSCRIPT, "segments": [{"start": 0.0, "end": 1.5, "text": TRANSCRIPT}]},
        ),
    ),
    Case(
        "replicate",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "black-forest-labs/flux-kontext-dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2PIC},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), PROMPT, model=m, **HF_PIC2PIC),
        replicate("/v1/models/black-forest-labs/flux-kontext-dev/predictions", REPLICATE_IMAGE)
        | download(REPLICATE_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "replicate",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "black-forest-labs/flux-kontext-dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", "media_url": IMAGE_URL},
        lambda c, m, f: c.image_to_image(IMAGE_URL, PROMPT, model=m),
        replicate("/v1/models/black-forest-labs/flux-kontext-dev/predictions", [REPLICATE_IMAGE])
        | download(REPLICATE_IMAGE, "image/png", OUT_PNG),
        variant="url",
    ),
    Case(
        "replicate",
        "text-to-image",
        "black-forest-labs/FLUX.1-schnell",
        "black-forest-labs/flux-schnell",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        replicate("/v1/models/black-forest-labs/flux-schnell/predictions", [REPLICATE_IMAGE])
        | download(REPLICATE_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "replicate",
        "text-to-image",
        "ByteDance/SDXL-Lightning",
        "bytedance/sdxl-lightning-4step:5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637",
        {"prompt": PROMPT},
        lambda c, m, f: c.text_to_image(PROMPT, model=m),
        replicate("/v1/predictions", REPLICATE_IMAGE) | download(REPLICATE_IMAGE, "image/png", OUT_PNG),
        variant="version",
    ),
    Case(
        "replicate",
        "text-to-video",
        "Wan-AI/Wan2.1-T2V-14B",
        "wavespeedai/wan-2.1-t2v-480p",
        {"prompt": PROMPT, **TEXT2VID},
        lambda c, m, f: c.text_to_video(PROMPT, model=m, **TEXT2VID),
        replicate("/v1/models/wavespeedai/wan-2.1-t2v-480p/predictions", REPLICATE_VIDEO)
        | download(REPLICATE_VIDEO, "video/mp4", OUT_MP4),
    ),
    Case(
        "replicate",
        "text-to-speech",
        "hexgrad/Kokoro-82M",
        f"jaaari/kokoro-82m:{KOKORO_VERSION}",
        {"text": TEXT, "voice": "af_bella"},
        lambda c, m, f: c.text_to_speech(TEXT, model=m, extra_body={"voice": "af_bella"}),
        replicate("/v1/predictions", FAL_AUDIO) | download(FAL_AUDIO, "audio/flac", OUT_FLAC),
    ),
    # scaleway
    Case(
        "scaleway",
        "feature-extraction",
        "BAAI/bge-multilingual-gemma2",
        "bge-multilingual-gemma2",
        {"texts": TEXTS},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m),
        embeddings("/scaleway/v1/embeddings"),
    ),
    Case(
        "scaleway",
        "feature-extraction",
        "BAAI/bge-multilingual-gemma2",
        "bge-multilingual-gemma2",
        {"texts": TEXTS, "normalize": True},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m, normalize=True),
        embeddings("/scaleway/v1/embeddings"),
        variant="normalize",
        differences=(Difference(("body", "normalize"), hf=True, hfbus=ABSENT, reason=TEI_OPTIONS.format("normalize")),),
    ),
    # together
    Case(
        "together",
        "feature-extraction",
        "BAAI/bge-base-en-v1.5",
        "BAAI/bge-base-en-v1.5",
        {"texts": TEXTS},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m),
        {
            ("POST", f"{ROUTER}/together/v1/embeddings"): [
                js({"object": "list", "data": [{"embedding": v, "index": i} for i, v in enumerate(VECTORS)]})
            ]
        },
    ),
    Case(
        "together",
        "feature-extraction",
        "BAAI/bge-base-en-v1.5",
        "BAAI/bge-base-en-v1.5",
        {"texts": TEXTS, "normalize": True, "truncate": True},
        lambda c, m, f: c.feature_extraction(TEXTS, model=m, normalize=True, truncate=True),
        {
            ("POST", f"{ROUTER}/together/v1/embeddings"): [
                js({"object": "list", "data": [{"embedding": v, "index": i} for i, v in enumerate(VECTORS)]})
            ]
        },
        variant="normalize",
        differences=(
            Difference(
                ("body", "normalize"),
                hf=True,
                hfbus=ABSENT,
                reason="together's OpenAI-style embeddings API has no TEI options; hfbus drops normalize and"
                " normalizes the vectors itself",
            ),
            Difference(
                ("body", "truncate"),
                hf=True,
                hfbus=ABSENT,
                reason="together's OpenAI-style embeddings API has no TEI options; hfbus drops truncate",
            ),
        ),
    ),
    Case(
        "together",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "black-forest-labs/FLUX.1-kontext-dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2PIC},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), PROMPT, model=m, **HF_PIC2PIC),
        together_images(),
    ),
    Case(
        "together",
        "image-to-image",
        "black-forest-labs/FLUX.2-dev",
        "black-forest-labs/FLUX.2-dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png"},
        lambda c, m, f: c.image_to_image(f(INPUT_PNG, "photo.png"), PROMPT, model=m),
        together_images(),
        variant="reference-images",
    ),
    Case(
        "together",
        "image-to-video",
        "Wan-AI/Wan2.2-I2V-A14B",
        "Wan-AI/Wan2.2-I2V-A14B",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png", **PIC2VID},
        lambda c, m, f: c.image_to_video(f(INPUT_PNG, "photo.png"), model=m, prompt=PROMPT, **PIC2VID),
        together_video(TOGETHER_VIDEO) | download(TOGETHER_VIDEO, "video/mp4", OUT_MP4),
    ),
    Case(
        "together",
        "image-to-video",
        "Wan-AI/Wan2.2-I2V-A14B",
        "Wan-AI/Wan2.2-I2V-A14B",
        {"media": INPUT_PNG},
        lambda c, m, f: c.image_to_video(INPUT_PNG, model=m),
        together_video(TOGETHER_VIDEO) | download(TOGETHER_VIDEO, "video/mp4", OUT_MP4),
        variant="untyped-bytes",
    ),
    Case(
        "together",
        "text-to-image",
        "black-forest-labs/FLUX.1-schnell",
        "black-forest-labs/FLUX.1-schnell",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        together_images(),
    ),
    Case(
        "together",
        "text-to-video",
        "Wan-AI/Wan2.2-T2V-A14B",
        "Wan-AI/Wan2.2-T2V-A14B",
        {"prompt": PROMPT, **TEXT2VID},
        lambda c, m, f: c.text_to_video(PROMPT, model=m, **TEXT2VID),
        together_video(TOGETHER_VIDEO) | download(TOGETHER_VIDEO, "video/mp4", OUT_MP4),
    ),
    Case(
        "together",
        "text-to-speech",
        "hexgrad/Kokoro-82M",
        "hexgrad/Kokoro-82M",
        {"text": TEXT, "voice": "af_alloy"},
        lambda c, m, f: c.text_to_speech(TEXT, model=m, extra_body={"voice": "af_alloy"}),
        {("POST", f"{ROUTER}/together/v1/audio/speech"): [(200, "audio/flac", OUT_FLAC)]},
    ),
    # wavespeed
    Case(
        "wavespeed",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "wavespeed-ai/flux-kontext-dev",
        {"prompt": PROMPT, "media": INPUT_JPEG, "media_type": "image/jpeg", **PIC2PIC},
        lambda c, m, f: c.image_to_image(INPUT_JPEG, PROMPT, model=m, **HF_PIC2PIC),
        wavespeed("wavespeed-ai/flux-kontext-dev", WAVESPEED_IMAGE) | download(WAVESPEED_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "wavespeed",
        "image-to-image",
        "black-forest-labs/FLUX.1-Kontext-dev",
        "wavespeed-ai/flux-kontext-dev",
        {"prompt": PROMPT, "media": INPUT_PNG, "media_type": "image/png"},
        lambda c, m, f: c.image_to_image(INPUT_PNG, PROMPT, model=m),
        wavespeed("wavespeed-ai/flux-kontext-dev", WAVESPEED_IMAGE) | download(WAVESPEED_IMAGE, "image/png", OUT_PNG),
        variant="png",
        differences=(
            Difference(
                ("body", "image"),
                hf=data_url("image/jpeg", INPUT_PNG),
                hfbus=data_url("image/png", INPUT_PNG),
                reason=WAVESPEED_LABEL,
            ),
        ),
    ),
    Case(
        "wavespeed",
        "image-to-video",
        "Wan-AI/Wan2.1-I2V-14B-480P",
        "wavespeed-ai/wan-2.1/i2v-480p",
        {"prompt": PROMPT, "media": INPUT_JPEG, "media_type": "image/jpeg", **PIC2VID},
        lambda c, m, f: c.image_to_video(INPUT_JPEG, model=m, prompt=PROMPT, **PIC2VID),
        wavespeed("wavespeed-ai/wan-2.1/i2v-480p", WAVESPEED_VIDEO) | download(WAVESPEED_VIDEO, "video/mp4", OUT_MP4),
    ),
    Case(
        "wavespeed",
        "image-to-video",
        "Wan-AI/Wan2.1-I2V-14B-480P",
        "wavespeed-ai/wan-2.1/i2v-480p",
        {"media": INPUT_PNG, "media_type": "image/png", "media_url": IMAGE_URL},
        lambda c, m, f: c.image_to_video(IMAGE_URL, model=m),
        wavespeed("wavespeed-ai/wan-2.1/i2v-480p", WAVESPEED_VIDEO) | download(WAVESPEED_VIDEO, "video/mp4", OUT_MP4),
        variant="url",
    ),
    Case(
        "wavespeed",
        "text-to-image",
        "black-forest-labs/FLUX.1-dev",
        "wavespeed-ai/flux-dev",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        wavespeed("wavespeed-ai/flux-dev", WAVESPEED_IMAGE) | download(WAVESPEED_IMAGE, "image/png", OUT_PNG),
    ),
    Case(
        "wavespeed",
        "text-to-video",
        "Wan-AI/Wan2.1-T2V-14B",
        "wavespeed-ai/wan-2.1/t2v-480p",
        {"prompt": PROMPT, **TEXT2VID},
        lambda c, m, f: c.text_to_video(PROMPT, model=m, **TEXT2VID),
        wavespeed("wavespeed-ai/wan-2.1/t2v-480p", WAVESPEED_VIDEO) | download(WAVESPEED_VIDEO, "video/mp4", OUT_MP4),
    ),
    # zai-org
    Case(
        "zai-org",
        "text-to-image",
        "zai-org/GLM-Image",
        "glm-image",
        {"prompt": PROMPT, **TEXT2PIC},
        lambda c, m, f: c.text_to_image(PROMPT, model=m, **HF_TEXT2PIC),
        zai(ZAI_IMAGE) | download(ZAI_IMAGE, "image/png", OUT_PNG),
    ),
]

JS_ONLY = {("deepinfra", "text-to-image"), ("novita", "image-to-video"), ("together", "automatic-speech-recognition")}
"""Rows only @huggingface/inference has: huggingface_hub 2.4.0 cannot be asked, so they have no case here."""

HFBUS_ROWS = [(provider, task) for provider, adapters in PROVIDERS.items() for task in adapters]


def case_param(case: Case) -> Any:
    marks: list[pytest.MarkDecorator] = []
    if case.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
    return pytest.param(case, id=case.id, marks=marks)


# --- recording both sides --------------------------------------------------------------------------------------


def normal_url(url: str) -> str:
    """The URL with its query re-encoded, so equal URLs compare equal whoever spelled them."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(parse_qsl(parts.query, keep_blank_values=True))))


def body_of(content_type: str, raw: bytes) -> Any:
    """A JSON body parsed (key order and spacing do not matter), a multipart body as its parts in order, any
    other body as bytes, no body as None."""
    if not raw:
        return None
    bare = content_type.split(";", 1)[0].strip().lower()
    if bare == "application/json":
        return json.loads(raw)
    if bare == "multipart/form-data":
        return form_parts(content_type, raw)
    return raw


def form_parts(content_type: str, raw: bytes) -> list[dict[str, Any]]:
    """Each part's disposition (name, filename), Content-Type and content; the boundary itself is not compared."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    assert message.is_multipart(), "a multipart/form-data body that does not parse"
    return [
        {
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "content-type": part["Content-Type"],
            "content": part.get_payload(decode=True),
        }
        for part in message.iter_parts()
    ]


def wire(method: str, url: str, headers: dict[str, str], raw: bytes, *, authenticated: bool) -> Wire:
    kept = {name.lower(): value for name, value in headers.items() if name.lower() not in IGNORED_HEADERS}
    if kept.get("accept") == TRANSPORT_ACCEPT:
        del kept["accept"]
    body = body_of(kept.get("content-type", ""), raw)
    if isinstance(body, list):  # multipart: each client draws its own boundary
        kept["content-type"] = "multipart/form-data"
    return {"method": method, "url": normal_url(url), "authenticated": authenticated, "headers": kept, "body": body}


class Upstream:
    """The canned replies of one flow; a URL with several replies gives them in turn, then repeats the last."""

    def __init__(self, routes: Routes) -> None:
        self._routes = {(method, normal_url(url)): list(replies) for (method, url), replies in routes.items()}
        self.wires: list[Wire] = []

    def answer(self, recorded: Wire) -> Reply:
        self.wires.append(recorded)
        replies = self._routes.get((recorded["method"], recorded["url"]))
        if not replies:
            return js({"error": f"no canned reply for {recorded['method']} {recorded['url']}"}, 404)
        return replies.pop(0) if len(replies) > 1 else replies[0]


class HubTransport:
    """The transport under huggingface_hub's shared httpx2 client: the Hub's answers, then the case's upstream."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.case: Case | None = None
        self.upstream = Upstream({})
        self.hub_requests: list[str] = []

    def client(self) -> httpx2.Client:
        """`default_client_factory`'s client, on this transport instead of the network."""
        return httpx2.Client(
            transport=httpx2.MockTransport(self.handle),
            event_hooks={"request": [hf_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=None,
        )

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host == urlsplit(constants.ENDPOINT).hostname:
            self.hub_requests.append(str(request.url))
            return self._hub(request)
        recorded = wire(
            request.method,
            str(request.url),
            dict(request.headers),
            request.read(),
            authenticated="authorization" in request.headers,
        )
        status, content_type, body = self.upstream.answer(recorded)
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    def _hub(self, request: httpx2.Request) -> httpx2.Response:
        """The Hub's model API for the case's model: the provider mapping, or (for hf-inference) the model info."""
        case = self.case
        if case is None or request.method != "GET" or request.url.path != f"/api/models/{case.hf_model}":
            # Also answers the client's agent-registry fetch, which then caches nothing.
            return httpx2.Response(404, json={"error": "not found"})
        if request.url.params.get("expand") == "inferenceProviderMapping":
            entry = {"status": "live", "providerId": case.provider_id, "task": case.task}
            mapping = {"id": case.hf_model, "inferenceProviderMapping": {case.provider: entry}}
            return httpx2.Response(200, json=mapping)
        tags = list(case.tags) or [case.task]
        return httpx2.Response(
            200, json={"id": case.hf_model, "pipeline_tag": case.pipeline_tag or case.task, "tags": tags}
        )


def _clear_client_caches() -> None:
    hf_common._fetch_inference_provider_mapping.cache_clear()
    hf_hf_inference._check_supported_task.cache_clear()
    hf_hf_inference._fetch_recommended_models.cache_clear()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubTransport]:
    """huggingface_hub wired to a local transport, with no waits between polls and nothing read from or written home."""
    transport = HubTransport(Files(tmp_path))
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    for name in ("HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "AI_AGENT", "AGENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the transport is local
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agent_harnesses.json"))
    monkeypatch.setattr(hf_fal_ai, "_POLLING_INTERVAL", 0.0)
    monkeypatch.setattr(hf_wavespeed, "_POLLING_INTERVAL", 0.0)
    monkeypatch.setattr(hf_together, "_VIDEO_POLLING_INTERVAL", 0.0)
    monkeypatch.setattr(hf_zai_org, "_POLLING_INTERVAL", 0.0)
    # Output conversions after the flow, which need Pillow or numpy: keep the bytes and lists as they are.
    monkeypatch.setattr(hf_client, "_bytes_to_image", lambda content: content)
    monkeypatch.setattr(hf_client, "_import_numpy", lambda: SimpleNamespace(array=lambda data, dtype=None: data))
    previous_factory = hf_http._GLOBAL_CLIENT_FACTORY
    _clear_client_caches()
    hf_http.set_client_factory(transport.client)
    try:
        yield transport
    finally:
        hf_http.set_client_factory(previous_factory)
        _clear_client_caches()


def run_huggingface_hub(case: Case, hub: HubTransport) -> tuple[list[Wire], Any]:
    hub.case = case
    hub.upstream = Upstream(case.routes)
    client = InferenceClient(provider=case.provider, api_key=ROUTER_TOKEN)  # type: ignore[arg-type]
    result = case.hf_call(client, case.hf_model, hub.files)
    return hub.upstream.wires, result


def hfbus_wire(call: HttpCall) -> Wire:
    """The call as the executor sends it: JSON bodies encoded with orjson, the token only when authenticated."""
    raw = orjson.dumps(call.json) if call.json is not None else call.data or b""
    headers = dict(call.headers)
    if call.json is not None:
        headers.setdefault("Content-Type", "application/json")
    return wire(call.method, call.url, headers, raw, authenticated=call.authenticated)


@dataclass
class BusRun:
    wires: list[Wire] = field(default_factory=list)
    output: Media | Vectors | Transcript | None = None
    stopped: str = ""
    """Why the flow stopped early (a call with no canned reply), empty when it finished."""


def run_hfbus(case: Case) -> BusRun:
    """The adapter's prepare/parse loop, as services.hf.tasks drives it, against the same canned replies."""
    upstream = Upstream(case.routes)
    adapter = get_adapter(case.provider, case.task)
    inp = case.task_input()
    run = BusRun(wires=upstream.wires)
    call = adapter.prepare(inp, ROUTER)
    for _ in range(20):
        status, content_type, body = upstream.answer(hfbus_wire(call))
        if not 200 <= status < 300:
            run.stopped = f"{call.method} {call.url} -> {status} {body.decode(errors='replace')}"
            return run
        step = adapter.parse(inp, HttpReply(status, {"content-type": content_type}, body, call), ROUTER)
        match step:
            case Pending(call=next_call) | Download(call=next_call):
                call = next_call
            case Media() | Vectors() | Transcript():
                run.output = step
                return run
    run.stopped = "no final step after 20 calls"
    return run


def expected_wires(case: Case, hf_wires: list[Wire]) -> list[Wire]:
    """huggingface_hub's requests with the case's known differences swapped in, each checked to still hold."""
    expected = copy.deepcopy(hf_wires)
    for difference in case.differences:
        assert difference.call < len(expected), f"{case.id}: no request #{difference.call} ({difference.reason})"
        parent: Any = expected[difference.call]
        for key in difference.where[:-1]:
            parent = parent[key]
        last = difference.where[-1]
        found = parent.get(last, ABSENT) if isinstance(parent, dict) else parent[last]
        assert found == difference.hf, (
            f"{case.id}: the known difference at {difference.where} no longer holds: huggingface_hub sends"
            f" {found!r}, the table says {difference.hf!r} ({difference.reason})"
        )
        if difference.hfbus is ABSENT:
            del parent[last]
        else:
            parent[last] = difference.hfbus
    return expected


def hf_output(result: Any) -> Any:
    """What huggingface_hub's method returned, in the shape of hfbus's final step."""
    if isinstance(result, bytes):
        return result
    if hasattr(result, "text"):  # AutomaticSpeechRecognitionOutput
        return result.text
    return [list(vector) for vector in result]


def hfbus_output(step: Media | Vectors | Transcript | None) -> Any:
    match step:
        case Media(data=data):
            return data
        case Transcript(text=text):
            return text
        case Vectors(vectors=vectors):
            return [floats_of(v) for v in vectors]
    return None


# --- the tests -------------------------------------------------------------------------------------------------


def test_every_hfbus_row_has_a_case() -> None:
    """Adding an adapter without a contract case here fails; so does a case for a row hfbus no longer has."""
    without_helper = {(p, t) for p, t in HFBUS_ROWS if t not in HF_PROVIDERS.get(p, {})}  # type: ignore[call-overload]
    assert without_helper == JS_ONLY, "JS_ONLY lists exactly the rows huggingface_hub has no helper for"
    main_rows = [(case.provider, case.task) for case in CASES if not case.variant]
    assert sorted(main_rows) == sorted(set(HFBUS_ROWS) - JS_ONLY), "one main (variant-less) case per row"
    assert {(case.provider, case.task) for case in CASES} <= set(HFBUS_ROWS) - JS_ONLY
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"


@pytest.mark.parametrize("case", [case_param(case) for case in CASES])
def test_same_requests_and_output_as_huggingface_hub(case: Case, hub: HubTransport) -> None:
    hf_wires, hf_result = run_huggingface_hub(case, hub)
    assert hf_wires, f"{case.id}: huggingface_hub sent nothing to the router"

    bus = run_hfbus(case)

    assert bus.wires == expected_wires(case, hf_wires)
    assert not bus.stopped, bus.stopped
    expected, got = hf_output(hf_result), hfbus_output(bus.output)
    if isinstance(bus.output, Vectors):
        assert len(got) == len(expected)
        for vector, want in zip(got, expected, strict=True):
            assert vector == pytest.approx(want)
    else:
        assert got == expected


def test_hub_lookups_use_the_case_model(hub: HubTransport) -> None:
    """The fixture's Hub answers what the client asks: the mapping with expand, the model info without."""
    fal = next(case for case in CASES if case.provider == "fal-ai" and case.task == "text-to-image")
    hf = next(case for case in CASES if case.provider == "hf-inference" and case.task == "text-to-image")
    run_huggingface_hub(fal, hub)
    run_huggingface_hub(hf, hub)
    model_lookups = [url for url in hub.hub_requests if "/api/models/" in url]
    assert model_lookups == [
        f"{constants.ENDPOINT}/api/models/{fal.hf_model}?expand=inferenceProviderMapping",
        f"{constants.ENDPOINT}/api/models/{hf.hf_model}",
    ]
