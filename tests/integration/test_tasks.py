"""Every non-chat tag end to end through NATS: every provider row, progress, fallback, media, bad input."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any

import anyio
import msgspec
import pytest

from schemas import Error, ErrorCode, Progress
from schemas.audio import TranscriptResult
from schemas.media import MediaInput, MediaResult
from schemas.vectorize import VectorizeResult
from services.bus import natsserver
from services.client import HfBus, Stream
from services.dev.fake_router import TRANSCRIPT_TEXT, FakeRouter, Fault
from services.dev.fake_router.files import png, wav
from services.hf.providers import PROVIDERS
from services.media_types import sniff
from services.settings import Settings
from tests.conftest import running, send_raw

pytestmark = pytest.mark.integration

IMAGE = png("input image")
AUDIO = wav("input audio")

KONTEXT = "black-forest-labs/FLUX.1-Kontext-dev"
FLUX = "black-forest-labs/FLUX.1-dev"
HUNYUAN = "tencent/HunyuanVideo"
WAN = "Wan-AI/Wan2.1-I2V-14B-720P"
WHISPER = "openai/whisper-large-v3"
KOKORO = "hexgrad/Kokoro-82M"

# (tag, model, provider, expected media type or None for non-media results)
ROWS: list[tuple[str, str, str, str | None]] = [
    ("vectorize", "intfloat/multilingual-e5-large", "hf-inference", None),
    ("vectorize", "BAAI/bge-base-en-v1.5", "together", None),
    ("vectorize", "BAAI/bge-m3", "deepinfra", None),
    ("vectorize", "BAAI/bge-multilingual-gemma2", "scaleway", None),
    ("text2pic", FLUX, "deepinfra", "image/png"),
    ("text2pic", FLUX, "fal-ai", "image/png"),
    ("text2pic", FLUX, "hf-inference", "image/png"),
    ("text2pic", FLUX, "nscale", "image/png"),
    ("text2pic", FLUX, "replicate", "image/png"),
    ("text2pic", FLUX, "together", "image/png"),
    ("text2pic", FLUX, "wavespeed", "image/png"),
    ("text2pic", "zai-org/GLM-Image", "zai-org", "image/png"),
    ("pic2pic", KONTEXT, "fal-ai", "image/png"),
    ("pic2pic", KONTEXT, "hf-inference", "image/png"),
    ("pic2pic", KONTEXT, "replicate", "image/png"),
    ("pic2pic", KONTEXT, "together", "image/png"),
    ("pic2pic", KONTEXT, "wavespeed", "image/png"),
    ("text2vid", HUNYUAN, "fal-ai", "video/mp4"),
    ("text2vid", HUNYUAN, "novita", "video/mp4"),
    ("text2vid", HUNYUAN, "replicate", "video/mp4"),
    ("text2vid", HUNYUAN, "together", "video/mp4"),
    ("text2vid", HUNYUAN, "wavespeed", "video/mp4"),
    ("pic2vid", WAN, "fal-ai", "video/mp4"),
    ("pic2vid", WAN, "together", "video/mp4"),
    ("pic2vid", WAN, "wavespeed", "video/mp4"),
    ("pic2vid", "MiniMaxAI/MiniMax-H3", "novita", "video/mp4"),
    ("sound2text", WHISPER, "hf-inference", None),
    ("sound2text", WHISPER, "fal-ai", None),
    ("sound2text", WHISPER, "replicate", None),
    ("sound2text", WHISPER, "deepinfra", None),
    ("sound2text", WHISPER, "together", None),
    ("text2sound", KOKORO, "fal-ai", "audio/wav"),
    ("text2sound", "facebook/mms-tts-eng", "hf-inference", "audio/wav"),
    ("text2sound", KOKORO, "deepinfra", "audio/wav"),
    ("text2sound", KOKORO, "replicate", "audio/wav"),
    ("text2sound", KOKORO, "together", "audio/wav"),
]
TASK_OF_TAG = {
    "vectorize": "feature-extraction",
    "text2pic": "text-to-image",
    "pic2pic": "image-to-image",
    "text2vid": "text-to-video",
    "pic2vid": "image-to-video",
    "sound2text": "automatic-speech-recognition",
    "text2sound": "text-to-speech",
}
NEEDS: dict[tuple[str, str], dict[str, Any]] = {("text2sound", "together"): {"voice": "af_alloy"}}
"""Request fields a row cannot do without (Together refuses speech without a voice)."""


def test_every_adapter_row_has_a_row_here() -> None:
    """A provider row added to the adapter table without an end-to-end run through NATS fails here."""
    covered = {(TASK_OF_TAG[tag], provider) for tag, _, provider, _ in ROWS}
    assert covered == {(task, provider) for provider, row in PROVIDERS.items() for task in row}


def start(bus: HfBus, tag: str, model: str | None, **fields: Any) -> Stream[Any]:
    image = MediaInput(data=IMAGE, content_type="image/png")
    match tag:
        case "vectorize":
            return bus.embed(["first text", "second text"], model=model, **fields)
        case "text2pic":
            return bus.image("a lighthouse at dawn", model=model, width=512, height=512, **fields)
        case "pic2pic":
            return bus.edit(image, "make it night", model=model, **fields)
        case "text2vid":
            return bus.video("waves on a beach", model=model, num_frames=33, **fields)
        case "pic2vid":
            return bus.animate(image, "slow pan", model=model, **fields)
        case "sound2text":
            return bus.transcribe(MediaInput(data=AUDIO, content_type="audio/wav"), model=model, **fields)
        case _:
            return bus.speak("hello from the bus", model=model, **fields)


async def run(settings: Settings, tag: str, model: str | None, **fields: Any) -> list[Any]:
    async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        with anyio.fail_after(30):
            return [o async for o in start(bus, tag, model, **fields)]


@pytest.mark.parametrize(("tag", "model", "provider", "media_type"), ROWS, ids=[f"{r[0]}-{r[2]}" for r in ROWS])
async def test_every_tag_works_through_nats_for_every_provider(
    settings: Settings, router: FakeRouter, tag: str, model: str, provider: str, media_type: str | None
) -> None:
    router.job_polls = 1
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        with anyio.fail_after(30):
            outputs = [o async for o in start(bus, tag, model, provider=provider, **NEEDS.get((tag, provider), {}))]
        result = outputs[-1]
        assert not isinstance(result, Error), result
        assert [o.seq for o in outputs] == list(range(len(outputs)))
        assert result.provider == provider
        assert result.model == model
        assert result.router_request_id in router.request_ids, "the router's id of the call that started the job"
        if isinstance(result, MediaResult):
            (ref,) = result.media
            data = await bus.download(ref)
            assert sniff(data) == media_type == ref.content_type
            assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
            assert ref.bucket == settings.media_bucket
    if isinstance(result, VectorizeResult):
        assert len(result.vectors) == 2 and result.dims == len(result.vectors[0]) > 0
        assert result.usage.inputs == 2
    if isinstance(result, TranscriptResult):
        assert result.text == TRANSCRIPT_TEXT
    cdn_calls = [r for r in router.requests if r.path.startswith("/cdn/")]
    assert all("authorization" not in r.headers for r in cdn_calls), "the HF token went to a CDN"


async def test_a_queued_job_publishes_progress_before_its_result(settings: Settings, router: FakeRouter) -> None:
    router.job_polls = 3
    async with running(settings):
        outputs = await run(settings, "text2vid", HUNYUAN, provider="fal-ai")

    progress = [o for o in outputs if isinstance(o, Progress)]
    assert progress, "a subscriber can show the job's progress"
    assert {p.status for p in progress} <= {"queued", "running", "completed"}
    assert any(p.queue_position is not None for p in progress)
    assert [p.elapsed_s for p in progress] == sorted(p.elapsed_s for p in progress)
    assert isinstance(outputs[-1], MediaResult)


async def test_an_unavailable_provider_falls_back_to_the_next_live_one(settings: Settings, router: FakeRouter) -> None:
    async with running(settings):
        warm = (await run(settings, "text2pic", FLUX))[-1]  # the Hub mapping is now cached
        router.reset()
        # The first live provider answers 503 to the first call and to each of its retries (max_retries=3).
        router.faults.extend([Fault.status(503, body=b'{"error":"down"}')] * 4)
        outputs = await run(settings, "text2pic", FLUX)

    assert isinstance(warm, MediaResult)
    result = outputs[-1]
    assert isinstance(result, MediaResult)
    tried = [r.path.split("/")[1] for r in router.requests if not r.path.startswith("/cdn/")]
    assert tried[:4] == [warm.provider] * 4
    assert result.provider == tried[-1] != warm.provider, "the result names the provider that served it"


async def test_the_catalog_default_and_its_price_are_used(settings: Settings, router: FakeRouter) -> None:
    async with running(settings):
        outputs = await run(settings, "text2pic", None, provider="fal-ai")

    result = outputs[-1]
    assert isinstance(result, MediaResult)
    assert result.model == FLUX
    assert result.cost_usd == 0.035
    assert result.usage.images == 1


@pytest.mark.parametrize(
    ("tag", "model", "fields", "code", "named"),
    [
        ("text2pic", "nobody/no-such-model", {}, ErrorCode.UNKNOWN_MODEL, "does not exist"),
        ("text2pic", FLUX, {"provider": "acme-ai"}, ErrorCode.INVALID_REQUEST, "provider"),
        ("text2vid", "Lightricks/LTX-Video", {"provider": "together"}, ErrorCode.UNKNOWN_MODEL, "fal-ai"),
        ("sound2text", WHISPER, {"provider": "fal-ai"}, ErrorCode.INVALID_REQUEST, "audio"),
    ],
)
async def test_bad_task_requests_get_one_error_naming_what_was_wrong(
    settings: Settings, router: FakeRouter, tag: str, model: str, fields: dict[str, Any], code: ErrorCode, named: str
) -> None:
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        if tag == "sound2text":
            # fal's whisper cannot take FLAC inline (reference §9.4): refused before any upstream call.
            flac = b"fLaC" + bytes(64)
            stream = bus.transcribe(MediaInput(data=flac, content_type="audio/flac"), model=model, **fields)
        else:
            stream = start(bus, tag, model, **fields)
        with anyio.fail_after(20):
            outputs = [o async for o in stream]

    assert len(outputs) == 1
    error = outputs[0]
    assert isinstance(error, Error) and error.code == code
    assert named in error.message


async def test_an_image_that_is_not_an_image_is_refused(settings: Settings, router: FakeRouter) -> None:
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        stream = bus.edit(MediaInput(data=b"GIF? no, plain text", content_type="image/png"), "x", model=KONTEXT)
        outputs = [o async for o in stream]

    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.INVALID_REQUEST
    assert error.message.startswith("image: not an image")
    assert not [r for r in router.requests if r.path.startswith("/fal-ai") or "/models/" in r.path]


async def test_an_input_by_object_store_reference_round_trips(settings: Settings, router: FakeRouter) -> None:
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        generated = await bus.image("source picture", model=FLUX, provider="hf-inference").result()
        (ref,) = generated.media
        stored = await bus.download(ref)
        edited = await bus.edit(
            MediaInput(bucket=ref.bucket, name=ref.name), "now in blue", model=KONTEXT, provider="hf-inference"
        ).result()

    sent = [r for r in router.requests if r.path == f"/hf-inference/models/{KONTEXT}"][-1]
    assert stored in (sent.body, base64.b64decode(sent.json()["inputs"]) if sent.body.startswith(b"{") else b"")
    assert isinstance(edited, MediaResult)


@pytest.mark.parametrize(
    "url", ["http://example.org/cat.png", "https://127.0.0.1/cat.png", "https://169.254.169.254/latest/meta-data"]
)
async def test_a_media_url_that_is_not_public_https_is_refused(
    settings: Settings, router: FakeRouter, url: str
) -> None:
    settings = replace(settings, media_allow_hosts=frozenset())
    payload = msgspec.json.encode({"id": "u1", "prompt": "x", "image": {"url": url}})
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = await send_raw(bus.nc, f"{settings.prefix}.pic2pic", payload)

    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.INVALID_REQUEST
    assert "https" in error.message or "public" in error.message


async def test_core_mode_without_jetstream_refuses_large_media_as_too_large(
    settings: Settings, router: FakeRouter, tmp_path: Any
) -> None:
    server = natsserver.start(tmp_path, jetstream=False)
    try:
        plain = replace(settings, nats_url=server.url, mode="core", inline_media_bytes=100)
        small = replace(plain, inline_media_bytes=1_000_000)
        async with running(plain):
            too_big = (await run(plain, "text2pic", FLUX, provider="hf-inference"))[-1]
        async with running(small):
            inline = (await run(small, "text2pic", FLUX, provider="hf-inference"))[-1]
    finally:
        server.stop()

    assert isinstance(too_big, Error) and too_big.code == ErrorCode.TOO_LARGE
    assert "no JetStream object store" in too_big.message
    assert isinstance(inline, MediaResult)
    (ref,) = inline.media
    assert ref.bucket is None and ref.data is not None and sniff(ref.data) == "image/png"


async def test_a_provider_that_keeps_failing_is_cooled_down(settings: Settings, router: FakeRouter) -> None:
    settings = replace(settings, max_retries=0, cooldown_after=2, cooldown_s=60)

    def providers_called() -> list[str]:
        return [r.path.split("/")[1] for r in router.requests if not r.path.startswith(("/cdn/", "/api/"))]

    async with running(settings):
        first = (await run(settings, "text2pic", FLUX))[-1]
        assert isinstance(first, MediaResult)
        for _ in range(2):
            router.reset()
            router.faults.append(Fault.status(503, body=b'{"error":"down"}'))
            fell_back = (await run(settings, "text2pic", FLUX))[-1]
            assert isinstance(fell_back, MediaResult) and fell_back.provider != first.provider
            assert providers_called()[0] == first.provider
        router.reset()
        cooled = (await run(settings, "text2pic", FLUX))[-1]

    assert isinstance(cooled, MediaResult)
    assert first.provider not in providers_called(), "a cooled-down provider is not tried first"


async def test_cancelling_a_queued_job_cancels_it_at_the_provider(settings: Settings, router: FakeRouter) -> None:
    router.job_polls = 100  # the job would run for about 50 s
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        stream = bus.video("a long film", model=HUNYUAN, provider="fal-ai")
        outputs = []
        with anyio.fail_after(20):
            async for output in stream:
                outputs.append(output)
                if isinstance(output, Progress) and len(outputs) == 2:
                    await stream.cancel()

    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.CANCELLED
    assert len(router.cancelled_jobs) == 1
    cancel = [r for r in router.requests if r.method == "PUT"]
    assert len(cancel) == 1 and cancel[0].path.endswith("/cancel") and cancel[0].query == {"_subdomain": "queue"}


async def test_concurrent_vectorize_requests_share_upstream_calls_and_get_their_own_vectors(
    settings: Settings, router: FakeRouter
) -> None:
    texts = [f"sentence number {i}" for i in range(30)]
    model = "intfloat/multilingual-e5-large"

    async def embed_each(config: Settings) -> dict[str, list[float]]:
        vectors: dict[str, list[float]] = {}
        async with running(config), HfBus.connect(config.nats_url, prefix=config.prefix) as bus:

            async def one(text: str) -> None:
                result = await bus.embed(text, model=model).result()
                (vectors[text],) = result.vectors

            async with anyio.create_task_group() as tg:
                for text in texts:
                    tg.start_soon(one, text)
        return vectors

    def embedding_calls() -> int:
        return sum(1 for r in router.requests if r.path.endswith("/pipeline/feature-extraction"))

    batched = await embed_each(replace(settings, embed_batch_wait_s=0.05))
    batched_calls = embedding_calls()
    router.reset()
    one_by_one = await embed_each(replace(settings, embed_batch_wait_s=0.0))

    assert embedding_calls() == len(texts)
    assert batched_calls < len(texts) // 3, f"{batched_calls} upstream calls for {len(texts)} requests"
    assert batched == one_by_one, "every caller gets exactly the vector its own call would have given"
