"""The provider x task adapters: exact calls out, and every reply of each flow read back. No sockets."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from schemas.codec import JSON_CODEC, MSGPACK_CODEC, JsonText
from schemas.vectorize import VectorizeResult
from services.errors import InvalidRequest, UnknownModel, UpstreamError
from services.hf.providers import (
    PROVIDERS,
    TASKS,
    HttpCall,
    HttpReply,
    Media,
    NoAdapter,
    Pending,
    ProviderJobFailed,
    ProviderReplyInvalid,
    Step,
    Task,
    TaskInput,
    Transcript,
    UnsupportedInput,
    Vectors,
    dims_of,
    floats_of,
    get_adapter,
    providers_for,
)
from tests.unit.provider_kit import (
    BASE,
    FLAC,
    IMAGE_HEADERS,
    JPEG,
    JSON_HEADERS,
    MP4,
    PNG,
    adapter,
    assert_call,
    b64,
    download,
    inp,
    reply,
    run,
)


class TestRegistry:
    def test_rows_and_keys_are_alphabetical(self) -> None:
        assert list(PROVIDERS) == sorted(PROVIDERS)
        for adapters in PROVIDERS.values():
            assert list(adapters) == sorted(adapters)

    @pytest.mark.parametrize(("provider", "task"), [(p, t) for p, row in PROVIDERS.items() for t in row])
    def test_each_adapter_matches_its_row(self, provider: str, task: Task) -> None:
        helper = get_adapter(provider, task)
        assert (helper.provider, helper.task) == (provider, task)

    def test_every_task_has_a_provider(self) -> None:
        assert all(providers_for(task) for task in TASKS)
        assert providers_for("image-to-video") == ["fal-ai", "novita", "together", "wavespeed"]

    def test_miss_names_the_providers_of_the_task(self) -> None:
        with pytest.raises(NoAdapter, match="providers for text-to-video: fal-ai, novita, replicate, together"):
            get_adapter("nscale", "text-to-video")
        with pytest.raises(UnknownModel, match="unknown task 'conversational'"):
            get_adapter("together", "conversational")

    def test_wrong_task_input_is_a_bug(self) -> None:
        with pytest.raises(ValueError):
            adapter("nscale", "text-to-image").prepare(inp("text-to-video", "m", prompt="p"), BASE)


class TestHfInference:
    @pytest.mark.parametrize(
        ("data", "url", "headers", "body"),
        [
            (
                inp("feature-extraction", "BAAI/bge-small-en", texts=["a", "b"], normalize=True, truncate=False),
                f"{BASE}/hf-inference/models/BAAI/bge-small-en/pipeline/feature-extraction",
                JSON_HEADERS,
                {"inputs": ["a", "b"], "normalize": True, "truncate": False},
            ),
            (
                inp("text-to-image", "org/sd", prompt="cat", width=512, height=640, steps=20, seed=1, options={"x": 1}),
                f"{BASE}/hf-inference/models/org/sd",
                IMAGE_HEADERS,
                {
                    "inputs": "cat",
                    "parameters": {"width": 512, "height": 640, "num_inference_steps": 20, "seed": 1, "x": 1},
                },
            ),
            (
                inp("image-to-image", "org/ip2p", media=PNG, media_type="image/png"),
                f"{BASE}/hf-inference/models/org/ip2p",
                {"Accept": "image/png", "Content-Type": "image/png"},
                PNG,
            ),
            (
                inp("image-to-image", "org/ip2p", media=PNG, prompt="snow", width=64, height=32, guidance_scale=7.5),
                f"{BASE}/hf-inference/models/org/ip2p",
                IMAGE_HEADERS,
                {
                    "inputs": b64(PNG),
                    "parameters": {"prompt": "snow", "guidance_scale": 7.5, "target_size": {"width": 64, "height": 32}},
                },
            ),
            (
                inp("automatic-speech-recognition", "openai/whisper", media=FLAC, media_type="audio/flac"),
                f"{BASE}/hf-inference/models/openai/whisper",
                {"Content-Type": "audio/flac"},
                FLAC,
            ),
            (
                inp("automatic-speech-recognition", "openai/whisper", media=FLAC),
                f"{BASE}/hf-inference/models/openai/whisper",
                {},
                FLAC,
            ),
            (
                inp("automatic-speech-recognition", "openai/whisper", media=FLAC, language="fr"),
                f"{BASE}/hf-inference/models/openai/whisper",
                JSON_HEADERS,
                {"inputs": b64(FLAC), "parameters": {"generate_kwargs": {"language": "fr"}}},
            ),
            (
                inp("text-to-speech", "facebook/mms-tts-eng", text="hello"),
                f"{BASE}/hf-inference/models/facebook/mms-tts-eng",
                JSON_HEADERS,
                {"inputs": "hello"},
            ),
        ],
    )
    def test_prepare(self, data: TaskInput, url: str, headers: dict[str, str], body: Any) -> None:
        assert_call(adapter("hf-inference", data.task).prepare(data, BASE + "/"), "POST", url, headers, body)

    @pytest.mark.parametrize(
        ("body", "vectors"),
        [(b"[[1, 2.5], [3, 4]]", [[1.0, 2.5], [3.0, 4.0]]), (b"[0.5, 1]", [[0.5, 1.0]])],
    )
    def test_vectors(self, body: bytes, vectors: list[list[float]]) -> None:
        data = inp("feature-extraction", "m", texts=["a"] * len(vectors))
        step = adapter("hf-inference", data.task).parse(data, reply(body), BASE)
        assert isinstance(step, Vectors)
        assert [floats_of(v) for v in step.vectors] == vectors
        assert [dims_of(v) for v in step.vectors] == [len(v) for v in vectors]

    @pytest.mark.parametrize(
        ("body", "texts"),
        [
            (b"[[0.1, -2.5e-3, 3E+2, 4]]", [b"[0.1, -2.5e-3, 3E+2, 4]"]),
            (b"[ [1.5,2] ,\n [ 3 , 4 ] ]", [b"[1.5,2]", b"[ 3 , 4 ]"]),
            (b"[[]]", [b"[]"]),
        ],
    )
    def test_vectors_pass_through_as_the_router_wrote_them(self, body: bytes, texts: list[bytes]) -> None:
        data = inp("feature-extraction", "m", texts=["a"] * len(texts))
        step = adapter("hf-inference", data.task).parse(data, reply(body), BASE)
        assert isinstance(step, Vectors)
        assert [v.text for v in step.vectors if isinstance(v, JsonText)] == texts
        answer = VectorizeResult(id="r", seq=0, model="m", vectors=list(step.vectors), dims=dims_of(step.vectors[0]))  # type: ignore[arg-type]
        decoded = [msgspec.json.decode(t, type=list[float]) for t in texts]
        for codec in (JSON_CODEC, MSGPACK_CODEC):
            assert codec.decode_as(codec.encode(answer), VectorizeResult).vectors == decoded
        assert msgspec.json.decode(JSON_CODEC.encode(answer))["dims"] == len(decoded[0])

    @pytest.mark.parametrize(
        "body",
        [
            b"[[[1.0], [2.0]]]",
            b'{"error": "x"}',
            b"[[1.0], [2.0]]",
            b'[[1.0, "2"]]',
            b"[[1.0, null]]",
            b"[[1.0, true]]",
            b'[{"a": 1}]',
            b"[[1.0, [2.0]]]",
        ],
    )
    def test_unusable_vectors(self, body: bytes) -> None:
        data = inp("feature-extraction", "m", texts=["only one"])
        with pytest.raises(ProviderReplyInvalid):
            adapter("hf-inference", data.task).parse(data, reply(body), BASE)

    @pytest.mark.parametrize(
        ("headers", "body", "expected"),
        [
            ({"content-type": "image/jpeg"}, JPEG, Media(JPEG, "image/jpeg")),
            ({}, PNG, Media(PNG, "image/png")),
            ({"content-type": "application/json"}, {"data": [{"b64_json": b64(PNG)}]}, Media(PNG, "image/png")),
            (
                {"content-type": "application/json"},
                {"output": ["https://cdn.x/a.png"]},
                download("https://cdn.x/a.png"),
            ),
        ],
    )
    def test_image_replies(self, headers: dict[str, str], body: Any, expected: Step) -> None:
        data = inp("text-to-image", "m", prompt="p")
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert adapter("hf-inference", data.task).parse(data, HttpReply(200, headers, raw), BASE) == expected

    def test_speech_replies(self) -> None:
        asr = inp("automatic-speech-recognition", "m", media=FLAC)
        body = {
            "text": " hi there",
            "chunks": [{"text": " hi", "timestamp": [0.0, 0.4]}, {"text": " there", "timestamp": [0.4, None]}],
        }
        expected = Transcript("hi there", [(0.0, 0.4, "hi"), (0.4, 0.4, "there")])
        assert adapter("hf-inference", asr.task).parse(asr, reply(body), BASE) == expected
        tts = inp("text-to-speech", "m", text="hi")
        audio = reply(FLAC, headers={"content-type": "audio/flac"})
        assert adapter("hf-inference", tts.task).parse(tts, audio, BASE) == Media(FLAC, "audio/flac")

    def test_unsupported_inputs(self) -> None:
        with pytest.raises(UnsupportedInput, match="^image: ") as caught:
            adapter("hf-inference", "image-to-image").prepare(
                inp("image-to-image", "m", media_url="https://x/a.png"), BASE
            )
        assert isinstance(caught.value, InvalidRequest) and caught.value.field == "image"
        with pytest.raises(UnsupportedInput, match="^voice: "):
            adapter("hf-inference", "text-to-speech").prepare(inp("text-to-speech", "m", text="t", voice="v"), BASE)


FAL_QUEUE = "?_subdomain=queue"


def fal_poll(path: str, headers: dict[str, str]) -> HttpCall:
    return HttpCall("GET", f"{BASE}/fal-ai{path}/status{FAL_QUEUE}", headers, purpose="poll")


class TestFalAi:
    @pytest.mark.parametrize(
        ("data", "url", "headers", "body"),
        [
            (
                inp("text-to-image", "fal-ai/flux/dev", prompt="cat", width=512, height=768, seed=3),
                f"{BASE}/fal-ai/fal-ai/flux/dev",
                IMAGE_HEADERS,
                {"prompt": "cat", "image_size": {"width": 512, "height": 768}, "seed": 3},
            ),
            (
                inp("text-to-image", "fal-ai/flux/dev", prompt="cat", width=512, options={"num_images": 1}),
                f"{BASE}/fal-ai/fal-ai/flux/dev",
                IMAGE_HEADERS,
                {"prompt": "cat", "width": 512, "num_images": 1},
            ),
            (
                inp("text-to-video", "fal-ai/ltx-video", prompt="cat", num_frames=49, negative_prompt="dog"),
                f"{BASE}/fal-ai/fal-ai/ltx-video{FAL_QUEUE}",
                JSON_HEADERS,
                {"prompt": "cat", "num_frames": 49, "negative_prompt": "dog"},
            ),
            (
                inp(
                    "image-to-image",
                    "fal-ai/flux-kontext/dev",
                    media=PNG,
                    media_type="image/png",
                    prompt="snow",
                    width=8,
                    height=8,
                ),
                f"{BASE}/fal-ai/fal-ai/flux-kontext/dev{FAL_QUEUE}",
                IMAGE_HEADERS,
                {
                    "image_url": f"data:image/png;base64,{b64(PNG)}",
                    "image_urls": [f"data:image/png;base64,{b64(PNG)}"],
                    "prompt": "snow",
                    "image_size": {"width": 8, "height": 8},
                },
            ),
            (
                inp("image-to-video", "fal-ai/wan-i2v", media_url="https://img.example/a.jpg", prompt="move"),
                f"{BASE}/fal-ai/fal-ai/wan-i2v{FAL_QUEUE}",
                JSON_HEADERS,
                {"image_url": "https://img.example/a.jpg", "prompt": "move"},
            ),
            (
                inp("text-to-speech", "fal-ai/kokoro", text="hello", voice="af_heart"),
                f"{BASE}/fal-ai/fal-ai/kokoro",
                JSON_HEADERS,
                {"text": "hello", "voice": "af_heart"},
            ),
            (
                inp(
                    "automatic-speech-recognition", "fal-ai/whisper", media_url="https://a.example/x.ogg", language="de"
                ),
                f"{BASE}/fal-ai/fal-ai/whisper",
                JSON_HEADERS,
                {"audio_url": "https://a.example/x.ogg", "language": "de"},
            ),
        ],
    )
    def test_prepare(self, data: TaskInput, url: str, headers: dict[str, str], body: Any) -> None:
        assert_call(adapter("fal-ai", data.task).prepare(data, BASE), "POST", url, headers, body)

    @pytest.mark.parametrize(
        ("media_type", "label"),
        [
            (None, "audio/mpeg"),
            ("audio/mpeg", "audio/mpeg"),
            ("audio/mp3", "audio/mpeg"),
            ("audio/wav", "audio/x-wav"),
            ("audio/x-wav", "audio/x-wav"),
            ("audio/webm;codecs=opus", "video/webm"),
        ],
    )
    def test_speech_data_url_labels(self, media_type: str | None, label: str) -> None:
        data = inp("automatic-speech-recognition", "fal-ai/whisper", media=FLAC, media_type=media_type)
        call = adapter("fal-ai", data.task).prepare(data, BASE)
        assert call.json == {"audio_url": f"data:{label};base64,{b64(FLAC)}"}

    @pytest.mark.parametrize("media_type", ["audio/flac", "audio/ogg", "audio/mp4", "audio/x-m4a"])
    def test_speech_refuses_types_fal_cannot_decode(self, media_type: str) -> None:
        data = inp("automatic-speech-recognition", "fal-ai/whisper", media=FLAC, media_type=media_type)
        with pytest.raises(UnsupportedInput, match=f"^audio: .*{media_type}.*audio/mpeg, audio/wav or audio/webm"):
            adapter("fal-ai", data.task).prepare(data, BASE)

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"text": " hi", "chunks": [{"text": " hi", "timestamp": [0, 1.5]}]}, Transcript("hi", [(0.0, 1.5, "hi")])),
            (
                {"output": "hi", "segments": [{"text": "hi", "start": 0.5, "end": 1}]},
                Transcript("hi", [(0.5, 1.0, "hi")]),
            ),
        ],
    )
    def test_speech_replies(self, body: Any, expected: Transcript) -> None:
        data = inp("automatic-speech-recognition", "fal-ai/whisper", media_url="https://a/x.mp3")
        assert adapter("fal-ai", data.task).parse(data, reply(body), BASE) == expected

    def test_sync_image_to_download(self) -> None:
        data = inp("text-to-image", "fal-ai/flux/dev", prompt="cat")
        body = {"images": [{"url": "https://v3.fal.media/files/a.jpeg", "content_type": "image/jpeg"}], "seed": 1}
        steps = run("fal-ai", data, body, JPEG)
        assert steps == [download("https://v3.fal.media/files/a.jpeg"), Media(JPEG, "image/jpeg")]

    def test_sync_speech_to_download(self) -> None:
        data = inp("text-to-speech", "fal-ai/kokoro", text="hello")
        steps = run("fal-ai", data, {"audio": {"url": "https://v3.fal.media/o.flac"}}, FLAC)
        assert steps == [download("https://v3.fal.media/o.flac"), Media(FLAC, "audio/flac")]

    def test_queue_flow_to_download(self) -> None:
        data = inp("text-to-video", "fal-ai/ltx-video", prompt="cat")
        # The response_url path differs from the submit path: the polls must follow it.
        submitted = {
            "request_id": "r1",
            "status": "IN_QUEUE",
            "response_url": "https://queue.fal.run/fal-ai/ltx-video/requests/r1",
            "queue_position": 2,
        }
        result = {"video": {"url": "https://v3.fal.media/files/out.mp4", "content_type": "video/mp4"}}
        polls = [{"status": "IN_QUEUE", "queue_position": 0}, {"status": "IN_PROGRESS"}, {"status": "COMPLETED"}]
        steps = run("fal-ai", data, submitted, *polls, result, MP4)
        poll = fal_poll("/fal-ai/ltx-video/requests/r1", JSON_HEADERS)
        fetch = HttpCall(
            "GET", f"{BASE}/fal-ai/fal-ai/ltx-video/requests/r1{FAL_QUEUE}", JSON_HEADERS, purpose="result"
        )
        assert steps == [
            Pending(poll, "queued", 2, 0.5),
            Pending(poll, "queued", 0, 0.5),
            Pending(poll, "running", None, 0.5),
            Pending(fetch, "completed", None, 0.0),
            download("https://v3.fal.media/files/out.mp4"),
            Media(MP4, "video/mp4"),
        ]

    @pytest.mark.parametrize(
        ("task", "result", "url"),
        [
            ("image-to-image", {"images": [{"url": "https://v3.fal.media/o.png"}]}, "https://v3.fal.media/o.png"),
            ("image-to-video", {"video": {"url": "https://v3.fal.media/o.mp4"}}, "https://v3.fal.media/o.mp4"),
        ],
    )
    def test_queue_results(self, task: Task, result: Any, url: str) -> None:
        data = inp(task, "fal-ai/app", prompt="p", text="t", media=PNG)
        poll = fal_poll("/fal-ai/app/requests/r", {})
        completed = adapter("fal-ai", task).parse(data, reply({"status": "COMPLETED"}, poll), BASE)
        assert isinstance(completed, Pending) and completed.call.purpose == "result"
        assert completed.call.headers == (IMAGE_HEADERS if task == "image-to-image" else JSON_HEADERS)
        assert adapter("fal-ai", task).parse(data, reply(result, completed.call), BASE) == download(url)

    def test_failures(self) -> None:
        data = inp("text-to-video", "fal-ai/app", prompt="p")
        helper = adapter("fal-ai", data.task)
        poll = fal_poll("/fal-ai/app/requests/r", JSON_HEADERS)
        with pytest.raises(ProviderJobFailed, match="GPU out of memory") as caught:
            helper.parse(data, reply({"status": "COMPLETED", "error": "GPU out of memory"}, poll), BASE)
        assert isinstance(caught.value, UpstreamError)
        result = HttpCall("GET", "u", {}, purpose="result")
        with pytest.raises(ProviderJobFailed, match="content policy"):
            helper.parse(data, reply({"detail": "content policy"}, result), BASE)
        with pytest.raises(ProviderReplyInvalid, match="request_id"):
            helper.parse(data, reply({"status": "IN_QUEUE"}), BASE)


REPLICATE_HEADERS = {"Prefer": "wait", "Content-Type": "application/json"}


def prediction(output: Any, status: str = "succeeded", error: Any = None) -> dict[str, Any]:
    return {"id": "p1", "model": "o/m", "status": status, "output": output, "error": error, "urls": {"get": "x"}}


class TestReplicate:
    @pytest.mark.parametrize(
        ("data", "url", "headers", "body"),
        [
            (
                inp("text-to-image", "black-forest-labs/flux-dev", prompt="cat", steps=4, options={"go_fast": True}),
                f"{BASE}/replicate/v1/models/black-forest-labs/flux-dev/predictions",
                {"Accept": "image/png", **REPLICATE_HEADERS},
                {"input": {"prompt": "cat", "num_inference_steps": 4, "go_fast": True}},
            ),
            (
                inp("text-to-image", "bytedance/sdxl-lightning-4step:5599ed30", prompt="cat"),
                f"{BASE}/replicate/v1/predictions",
                {"Accept": "image/png", **REPLICATE_HEADERS},
                {"input": {"prompt": "cat"}, "version": "5599ed30"},
            ),
            (
                inp("text-to-video", "genmoai/mochi-1:1944af04", prompt="cat", num_frames=30),
                f"{BASE}/replicate/v1/predictions",
                REPLICATE_HEADERS,
                {"input": {"prompt": "cat", "num_frames": 30}, "version": "1944af04"},
            ),
            (
                inp("image-to-image", "black-forest-labs/flux-kontext-pro", media=JPEG, prompt="snow"),
                f"{BASE}/replicate/v1/models/black-forest-labs/flux-kontext-pro/predictions",
                {"Accept": "image/png", **REPLICATE_HEADERS},
                {
                    "input": {
                        "image": f"data:image/jpeg;base64,{b64(JPEG)}",
                        "images": [f"data:image/jpeg;base64,{b64(JPEG)}"],
                        "input_image": f"data:image/jpeg;base64,{b64(JPEG)}",
                        "input_images": [f"data:image/jpeg;base64,{b64(JPEG)}"],
                        "prompt": "snow",
                    }
                },
            ),
            (
                inp("automatic-speech-recognition", "openai/whisper:8099696", media=FLAC, language="en"),
                f"{BASE}/replicate/v1/predictions",
                REPLICATE_HEADERS,
                {"input": {"audio": f"data:audio/wav;base64,{b64(FLAC)}", "language": "en"}, "version": "8099696"},
            ),
        ],
    )
    def test_prepare(self, data: TaskInput, url: str, headers: dict[str, str], body: Any) -> None:
        assert_call(adapter("replicate", data.task).prepare(data, BASE), "POST", url, headers, body)

    @pytest.mark.parametrize(
        "output",
        [
            "https://replicate.delivery/a/out.webp",
            ["https://replicate.delivery/a/out.webp", "https://replicate.delivery/a/2.webp"],
            {"image": "https://replicate.delivery/a/out.webp"},
        ],
    )
    def test_media_outputs(self, output: Any) -> None:
        data = inp("text-to-image", "o/m", prompt="cat")
        steps = run("replicate", data, prediction(output), b"RIFF\x00\x00\x00\x00WEBPVP8 ")
        assert steps[0] == download("https://replicate.delivery/a/out.webp")
        assert steps[1] == Media(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp")

    def test_data_url_output_needs_no_download(self) -> None:
        data = inp("text-to-image", "o/m", prompt="cat")
        assert run("replicate", data, prediction(f"data:image/png;base64,{b64(PNG)}")) == [Media(PNG, "image/png")]

    def test_output_null_is_not_finished(self) -> None:
        data = inp("text-to-video", "o/m", prompt="cat")
        with pytest.raises(ProviderReplyInvalid, match="not finished after Prefer: wait"):
            run("replicate", data, prediction(None, status="processing"))

    @pytest.mark.parametrize("status", ["failed", "canceled"])
    def test_failed_prediction(self, status: str) -> None:
        data = inp("text-to-image", "o/m", prompt="cat")
        with pytest.raises(ProviderJobFailed, match="NSFW content detected"):
            run("replicate", data, prediction(None, status=status, error="NSFW content detected"))

    @pytest.mark.parametrize(
        ("output", "expected"),
        [
            (" hello", Transcript("hello")),
            (["hello", "ignored"], Transcript("hello")),
            (
                {"transcription": " hello", "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": " hello"}]},
                Transcript("hello", [(0.0, 2.0, "hello")]),
            ),
            ({"transcription": "hallo", "translation": "hello"}, Transcript("hello")),
        ],
    )
    def test_speech_outputs(self, output: Any, expected: Transcript) -> None:
        data = inp("automatic-speech-recognition", "o/m", media_url="https://a/x.mp3")
        assert run("replicate", data, prediction(output)) == [expected]

    def test_speech_text_file_is_downloaded(self) -> None:
        data = inp("automatic-speech-recognition", "o/m", media_url="https://a/x.mp3")
        steps = run("replicate", data, prediction({"txt_file": "https://replicate.delivery/t.txt"}), b"hello\n")
        assert steps == [download("https://replicate.delivery/t.txt"), Transcript("hello")]

    def test_speech_without_text(self) -> None:
        data = inp("automatic-speech-recognition", "o/m", media_url="https://a/x.mp3")
        with pytest.raises(ProviderReplyInvalid):
            run("replicate", data, prediction({"srt_file": None}))


def together_image(model: str, **fields: Any) -> TaskInput:
    return inp("image-to-image", model, media=PNG, media_type="image/png", **fields)


class TestTogether:
    @pytest.mark.parametrize(
        ("data", "url", "headers", "body"),
        [
            (
                inp("feature-extraction", "BAAI/bge-base-en-v1.5", texts=["a", "b"], normalize=True, truncate=True),
                f"{BASE}/together/v1/embeddings",
                JSON_HEADERS,
                {"input": ["a", "b"], "model": "BAAI/bge-base-en-v1.5"},
            ),
            (
                inp("text-to-image", "black-forest-labs/FLUX.1-schnell", prompt="cat", steps=4, width=512, height=512),
                f"{BASE}/together/v1/images/generations",
                IMAGE_HEADERS,
                {
                    "prompt": "cat",
                    "steps": 4,
                    "width": 512,
                    "height": 512,
                    "response_format": "base64",
                    "model": "black-forest-labs/FLUX.1-schnell",
                },
            ),
            (
                together_image("black-forest-labs/FLUX.1-kontext-dev", prompt="snow"),
                f"{BASE}/together/v1/images/generations",
                IMAGE_HEADERS,
                {
                    "prompt": "snow",
                    "image_url": f"data:image/png;base64,{b64(PNG)}",
                    "response_format": "base64",
                    "model": "black-forest-labs/FLUX.1-kontext-dev",
                },
            ),
            (
                inp("text-to-video", "Wan-AI/Wan2.2-T2V-A14B", prompt="cat", steps=30, seed=2),
                f"{BASE}/together/v2/videos",
                JSON_HEADERS,
                {"prompt": "cat", "steps": 30, "seed": 2, "model": "Wan-AI/Wan2.2-T2V-A14B"},
            ),
            (
                inp("image-to-video", "Wan-AI/Wan2.2-I2V-A14B", media_url="https://img.example/a.png", prompt="go"),
                f"{BASE}/together/v2/videos",
                JSON_HEADERS,
                {
                    "frame_images": [{"input_image": "https://img.example/a.png", "frame": "first"}],
                    "prompt": "go",
                    "model": "Wan-AI/Wan2.2-I2V-A14B",
                },
            ),
        ],
    )
    def test_prepare(self, data: TaskInput, url: str, headers: dict[str, str], body: Any) -> None:
        assert_call(adapter("together", data.task).prepare(data, BASE), "POST", url, headers, body)

    @pytest.mark.parametrize(
        ("model", "image_key"),
        [
            ("black-forest-labs/FLUX.1-kontext-pro", "image_url"),
            ("black-forest-labs/flux.1-KONTEXT-max", "image_url"),
            ("black-forest-labs/FLUX.2-dev", "reference_images"),
            ("black-forest-labs/FLUX.1-dev", "reference_images"),
            ("google/gemini-3-pro-image", "reference_images"),
        ],
    )
    def test_kontext_rule(self, model: str, image_key: str) -> None:
        body = adapter("together", "image-to-image").prepare(together_image(model), BASE).json
        ref = f"data:image/png;base64,{b64(PNG)}"
        assert body[image_key] == (ref if image_key == "image_url" else [ref])
        assert ({"image_url", "reference_images"} - {image_key}).isdisjoint(body)
        assert body["prompt"] == ""

    def test_options_cannot_break_the_reply_format(self) -> None:
        data = inp("text-to-image", "m", prompt="cat", options={"response_format": "url", "n": 1})
        body = adapter("together", data.task).prepare(data, BASE).json
        assert (body["response_format"], body["n"]) == ("base64", 1)

    def test_image_reply(self) -> None:
        data = inp("text-to-image", "m", prompt="cat")
        assert run("together", data, {"data": [{"b64_json": b64(JPEG)}]}) == [Media(JPEG, "image/jpeg")]
        with pytest.raises(ProviderReplyInvalid, match="base64"):
            run("together", data, {"data": [{"b64_json": "%%%"}]})

    def test_embeddings_in_input_order_and_normalized_on_request(self) -> None:
        body = {"object": "list", "data": [{"embedding": [0, 2], "index": 1}, {"embedding": [3, 4], "index": 0}]}
        plain = inp("feature-extraction", "m", texts=["a", "b"])
        assert run("together", plain, body) == [Vectors([[3.0, 4.0], [0.0, 2.0]])]
        unit = inp("feature-extraction", "m", texts=["a", "b"], normalize=True)
        assert run("together", unit, body) == [Vectors([[0.6, 0.8], [0.0, 1.0]])]

    def test_video_polling_to_download(self) -> None:
        data = inp("text-to-video", "m", prompt="cat")
        done = {"id": "v1", "status": "completed", "outputs": {"video_url": "https://cdn.together.ai/v1.mp4"}}
        steps = run(
            "together",
            data,
            {"id": "v1", "status": "queued"},
            {"id": "v1"},
            {"id": "v1", "status": "in_progress"},
            done,
            MP4,
        )
        poll = HttpCall("GET", f"{BASE}/together/v2/videos/v1", JSON_HEADERS, purpose="poll")
        assert steps == [
            Pending(poll, "queued", None, 2.0),
            Pending(poll, "queued", None, 2.0),
            Pending(poll, "running", None, 2.0),
            download("https://cdn.together.ai/v1.mp4"),
            Media(MP4, "video/mp4"),
        ]

    def test_video_failures(self) -> None:
        data = inp("image-to-video", "m", media_url="https://x/a.png")
        failed = {"id": "v1", "status": "failed", "error": {"message": "prompt rejected"}}
        with pytest.raises(ProviderJobFailed, match="prompt rejected"):
            run("together", data, {"id": "v1", "status": "queued"}, failed)
        with pytest.raises(ProviderReplyInvalid, match="video_url"):
            run("together", data, {"id": "v1", "status": "completed", "outputs": {}})

    def test_inline_video_image_limit(self) -> None:
        data = inp("image-to-video", "m", media=b"\x00" * 50_000, media_type="image/png")
        with pytest.raises(UnsupportedInput, match="^image: .*60 KB"):
            adapter("together", data.task).prepare(data, BASE)


class TestNscale:
    def test_prepare(self) -> None:
        data = inp("text-to-image", "stabilityai/sdxl", prompt="cat", width=1024, height=768, steps=30, seed=5)
        assert_call(
            adapter("nscale", data.task).prepare(data, BASE),
            "POST",
            f"{BASE}/nscale/v1/images/generations",
            IMAGE_HEADERS,
            {
                "response_format": "b64_json",
                "prompt": "cat",
                "model": "stabilityai/sdxl",
                "size": "1024x768",
                "seed": 5,
            },
        )

    def test_reply(self) -> None:
        data = inp("text-to-image", "m", prompt="cat")
        assert run("nscale", data, {"data": [{"b64_json": b64(PNG)}]}) == [Media(PNG, "image/png")]
        with pytest.raises(ProviderReplyInvalid):
            run("nscale", data, {"data": []})


class TestNovita:
    def test_prepare(self) -> None:
        data = inp("text-to-video", "wan-t2v", prompt="cat", seed=1, options={"fast_mode": True})
        call = adapter("novita", data.task).prepare(data, BASE)
        assert_call(
            call, "POST", f"{BASE}/novita/v3/hf/wan-t2v", JSON_HEADERS, {"prompt": "cat", "seed": 1, "fast_mode": True}
        )

    def test_reply(self) -> None:
        data = inp("text-to-video", "wan-t2v", prompt="cat")
        body = {
            "video": {"video_url": "https://faas-output.novita.ai/v.mp4", "video_url_ttl": "3600", "video_type": "mp4"}
        }
        assert run("novita", data, body, MP4) == [
            download("https://faas-output.novita.ai/v.mp4"),
            Media(MP4, "video/mp4"),
        ]
        with pytest.raises(ProviderReplyInvalid, match="video_url"):
            run("novita", data, {"task_id": "t"})


def wavespeed_job(status: str, outputs: list[str] | None = None, error: str = "") -> dict[str, Any]:
    urls = {"get": "https://api.wavespeed.ai/api/v3/predictions/j1/result"}
    job = {"id": "j1", "model": "m", "outputs": outputs or [], "urls": urls, "status": status, "error": error}
    return {"code": 200, "message": "success", "data": job}


class TestWavespeed:
    @pytest.mark.parametrize(
        ("data", "headers", "body"),
        [
            (
                inp("text-to-image", "wavespeed-ai/flux-dev", prompt="cat", seed=1),
                IMAGE_HEADERS,
                {"prompt": "cat", "seed": 1},
            ),
            (
                inp("text-to-video", "wavespeed-ai/flux-dev", prompt="cat", num_frames=81),
                JSON_HEADERS,
                {"prompt": "cat", "num_frames": 81},
            ),
            (
                inp("image-to-image", "wavespeed-ai/flux-dev", media=PNG, prompt="snow"),
                IMAGE_HEADERS,
                {"image": f"data:image/jpeg;base64,{b64(PNG)}", "prompt": "snow"},
            ),
            (
                inp("image-to-video", "wavespeed-ai/flux-dev", media=PNG, media_type="image/png"),
                JSON_HEADERS,
                {"image": f"data:image/png;base64,{b64(PNG)}"},
            ),
        ],
    )
    def test_prepare(self, data: TaskInput, headers: dict[str, str], body: Any) -> None:
        url = f"{BASE}/wavespeed/api/v3/wavespeed-ai/flux-dev"
        assert_call(adapter("wavespeed", data.task).prepare(data, BASE), "POST", url, headers, body)

    def test_polling_to_download(self) -> None:
        data = inp("text-to-image", "m", prompt="cat")
        done = wavespeed_job("completed", ["https://d1q70pf5vjeyhc.cloudfront.net/j1.png"])
        steps = run("wavespeed", data, wavespeed_job("created"), wavespeed_job("processing"), done, PNG)
        poll = HttpCall("GET", f"{BASE}/wavespeed/api/v3/predictions/j1/result", IMAGE_HEADERS, purpose="poll")
        assert steps == [
            Pending(poll, "queued", None, 0.5),
            Pending(poll, "running", None, 0.5),
            download("https://d1q70pf5vjeyhc.cloudfront.net/j1.png"),
            Media(PNG, "image/png"),
        ]

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            (wavespeed_job("failed", error="prompt blocked"), ProviderJobFailed),
            ({"code": 400, "message": "insufficient balance", "data": None}, ProviderJobFailed),
            (wavespeed_job("exploded"), ProviderReplyInvalid),
            (wavespeed_job("completed"), ProviderReplyInvalid),
        ],
    )
    def test_failures(self, body: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            run("wavespeed", inp("text-to-video", "m", prompt="cat"), wavespeed_job("created"), body)


class TestMediaTypes:
    @pytest.mark.parametrize(
        ("headers", "url", "body", "expected"),
        [
            ({"content-type": "video/mp4; charset=binary"}, "https://c/x", b"", "video/mp4"),
            ({"content-type": "application/octet-stream"}, "https://c/x.webm?sig=1", b"", "video/webm"),
            ({}, "https://c/x", MP4, "video/mp4"),
            ({}, "https://c/x", b"???", "video/mp4"),
        ],
    )
    def test_download_type(self, headers: dict[str, str], url: str, body: bytes, expected: str) -> None:
        data = inp("text-to-video", "m", prompt="p")
        call = HttpCall("GET", url, {}, authenticated=False, purpose="download")
        step = adapter("novita", data.task).parse(data, HttpReply(200, headers, body, call), BASE)
        assert step == Media(body, expected)

    def test_bodies_stay_out_of_repr(self) -> None:
        call = adapter("hf-inference", "image-to-image").prepare(inp("image-to-image", "m", media=PNG), BASE)
        assert "PNG" not in repr(call) and "PNG" not in repr(Media(PNG, "image/png"))
