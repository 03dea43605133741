"""The gateway's non-chat endpoints through the official `openai` SDK: embeddings, images, audio, videos, models."""

from __future__ import annotations

import aiohttp
import anyio
import openai
import pytest

from services.dev.fake_router.files import png, wav
from services.settings import Settings
from tests.integration.gateway import gateway

pytestmark = pytest.mark.integration

EMBEDDER = "multilingual-e5-large"


async def test_base64_embeddings_decoded_by_the_sdk_equal_the_float_ones(any_mode_settings: Settings) -> None:
    async with gateway(any_mode_settings) as client:
        packed = await client.embeddings.create(model=EMBEDDER, input=["first", "second"])  # base64 by default
        plain = await client.embeddings.create(model=EMBEDDER, input=["first", "second"], encoding_format="float")

    assert [d.index for d in packed.data] == [0, 1]
    assert len(packed.data[0].embedding) == 1024
    assert [d.embedding for d in packed.data] == [d.embedding for d in plain.data]
    assert packed.data[0].embedding != packed.data[1].embedding


async def test_an_image_comes_inline_or_as_a_link_that_serves_the_same_bytes(settings: Settings) -> None:
    async with gateway(settings) as client:
        inline = await client.images.generate(prompt="a red fox", model="flux.1-dev", response_format="b64_json")
        linked = await client.images.generate(prompt="a red fox", model="flux.1-dev", response_format="url")
        assert linked.data is not None and linked.data[0].url is not None
        async with aiohttp.ClientSession() as http, http.get(linked.data[0].url) as response:
            status, content_type, body = response.status, response.content_type, await response.read()
        async with aiohttp.ClientSession() as http, http.get(linked.data[0].url + "x") as unknown:
            unknown_status = unknown.status

    assert inline.data is not None and inline.data[0].b64_json
    assert (status, content_type) == (200, "image/png") and body.startswith(b"\x89PNG")
    assert unknown_status == 404


async def test_an_image_edit_takes_a_multipart_upload_and_refuses_bytes_that_are_not_an_image(
    settings: Settings,
) -> None:
    async with gateway(settings) as client:
        edited = await client.images.edit(
            image=("fox.png", png("fox"), "image/png"),
            prompt="make it blue",
            model="flux.1-kontext-dev",
            response_format="b64_json",
        )
        with pytest.raises(openai.BadRequestError) as refused:
            await client.images.edit(image=("fox.png", b"not a picture", "image/png"), prompt="x")

    assert edited.data is not None and edited.data[0].b64_json
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "image"


@pytest.mark.parametrize("response_format", ["json", "text", "verbose_json", "srt", "vtt"])
async def test_a_transcription_answers_in_the_format_asked_for(settings: Settings, response_format: str) -> None:
    async with gateway(settings) as client:
        answer = await client.audio.transcriptions.create(
            file=("hello.wav", wav("hello"), "audio/wav"),
            model="whisper-large-v3",
            response_format=response_format,  # type: ignore[arg-type]
        )

    text = answer if isinstance(answer, str) else answer.text
    assert "simulated transcript" in text
    if response_format == "verbose_json":
        assert answer.segments and answer.segments[-1].end == answer.duration  # type: ignore[union-attr]
    if response_format == "srt":
        assert "00:00:00,000 --> " in text
    if response_format == "vtt":
        assert text.startswith("WEBVTT")


async def test_speech_answers_the_audio_bytes(settings: Settings) -> None:
    async with gateway(settings) as client:
        speech = await client.audio.speech.create(model="kokoro-82m", input="hello there", voice="alloy")

    assert speech.response.headers["content-type"] == "audio/wav"
    assert speech.content.startswith(b"RIFF")


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")  # the SDK's notice about OpenAI's own service
async def test_a_video_job_is_followed_to_completion_and_downloaded(any_mode_settings: Settings) -> None:
    async with gateway(any_mode_settings) as client:
        video = await client.videos.create(prompt="waves on a beach", model="hunyuanvideo")
        assert video.status == "queued"
        with anyio.fail_after(20):
            while video.status not in ("completed", "failed"):
                await anyio.sleep(0.1)
                video = await client.videos.retrieve(video.id)
        content = await client.videos.download_content(video.id)
        stranger = client.with_options(api_key="hfb-" + "x" * 43)
        with pytest.raises(openai.AuthenticationError):
            await stranger.videos.retrieve(video.id)

    assert (video.status, video.progress, video.error) == ("completed", 100, None)
    assert content.content[4:8] == b"ftyp"


async def test_the_model_list_is_the_catalog_with_tags_and_prices(settings: Settings) -> None:
    async with gateway(settings) as client:
        models = [model async for model in client.models.list()]
        one = await client.models.retrieve("flux.1-dev")

    assert {"deepseek-r1", "flux.1-dev", EMBEDDER} <= {m.id for m in models}
    assert one.id == "flux.1-dev" and getattr(one, "tag", None) == "text2pic"
