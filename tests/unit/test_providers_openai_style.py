"""The OpenAI-style adapters: deepinfra, scaleway, and together's speech and transcriptions. No sockets."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any

import pytest

from services.hf.mapping import ProviderRoute, choose
from services.hf.providers import (
    HttpCall,
    HttpReply,
    Media,
    ProviderReplyInvalid,
    TaskInput,
    Transcript,
    UnsupportedInput,
    Vectors,
    mapping_tasks,
)
from tests.unit.provider_kit import (
    BASE,
    FLAC,
    JSON_HEADERS,
    PNG,
    adapter,
    assert_call,
    b64,
    download,
    inp,
    reply,
    run,
)

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 8


def form(call: HttpCall) -> list[tuple[str, str | None, str | None, bytes]]:
    """A multipart body as (name, filename, part Content-Type, content), checked against the call's boundary."""
    content_type = call.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert call.data is not None and call.json is None
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + call.data
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        part_type = part["Content-Type"] if filename is not None else None
        parts.append((str(name), filename, part_type, payload))
    return parts


class TestEmbeddings:
    @pytest.mark.parametrize(
        ("provider", "url"),
        [
            ("deepinfra", f"{BASE}/deepinfra/v1/openai/embeddings"),
            ("scaleway", f"{BASE}/scaleway/v1/embeddings"),
            ("together", f"{BASE}/together/v1/embeddings"),
        ],
    )
    def test_prepare(self, provider: str, url: str) -> None:
        data = inp("feature-extraction", "BAAI/bge-m3", texts=["a", "b"], normalize=True, truncate=True)
        body = {"input": ["a", "b"], "model": "BAAI/bge-m3"}
        assert_call(adapter(provider, data.task).prepare(data, BASE), "POST", url, JSON_HEADERS, body)

    def test_options_cannot_change_the_model(self) -> None:
        data = inp("feature-extraction", "m", texts=["a"], options={"model": "other", "dimensions": 8})
        body = adapter("scaleway", data.task).prepare(data, BASE).json
        assert body == {"input": ["a"], "dimensions": 8, "model": "m"}

    @pytest.mark.parametrize("provider", ["deepinfra", "scaleway"])
    def test_vectors_in_input_order_and_normalized_on_request(self, provider: str) -> None:
        body = {"object": "list", "data": [{"embedding": [0, 2], "index": 1}, {"embedding": [3, 4], "index": 0}]}
        assert run(provider, inp("feature-extraction", "m", texts=["a", "b"]), body) == [
            Vectors([[3.0, 4.0], [0.0, 2.0]])
        ]
        unit = inp("feature-extraction", "m", texts=["a", "b"], normalize=True)
        assert run(provider, unit, body) == [Vectors([[0.6, 0.8], [0.0, 1.0]])]

    def test_wrong_count_is_invalid(self) -> None:
        with pytest.raises(ProviderReplyInvalid, match="deepinfra returned 1 vectors for 2 inputs"):
            run("deepinfra", inp("feature-extraction", "m", texts=["a", "b"]), {"data": [{"embedding": [1.0]}]})


class TestSpeech:
    @pytest.mark.parametrize(
        ("provider", "url"),
        [
            ("deepinfra", f"{BASE}/deepinfra/v1/openai/audio/speech"),
            ("together", f"{BASE}/together/v1/audio/speech"),
        ],
    )
    def test_prepare(self, provider: str, url: str) -> None:
        data = inp("text-to-speech", "hexgrad/Kokoro-82M", text="hello", voice="af_heart", options={"speed": 1.2})
        body = {"input": "hello", "voice": "af_heart", "speed": 1.2, "model": "hexgrad/Kokoro-82M"}
        assert_call(adapter(provider, data.task).prepare(data, BASE), "POST", url, JSON_HEADERS, body)

    def test_no_voice_is_sent_unless_given(self) -> None:
        # huggingface_hub's rule (the newer client); the JS client would default Kokoro to af_alloy.
        data = inp("text-to-speech", "hexgrad/Kokoro-82M", text="hello")
        assert adapter("together", data.task).prepare(data, BASE).json == {
            "input": "hello",
            "model": data.provider_model,
        }

    @pytest.mark.parametrize("provider", ["deepinfra", "together"])
    def test_audio_reply(self, provider: str) -> None:
        data = inp("text-to-speech", "m", text="hi")
        step = adapter(provider, data.task).parse(data, reply(FLAC, headers={"content-type": "audio/flac"}), BASE)
        assert step == Media(FLAC, "audio/flac")
        sniffed = adapter(provider, data.task).parse(data, HttpReply(200, {}, WAV), BASE)
        assert sniffed == Media(WAV, "audio/wav")

    def test_json_reply_is_invalid(self) -> None:
        data = inp("text-to-speech", "m", text="hi")
        with pytest.raises(ProviderReplyInvalid, match="JSON instead of audio"):
            adapter("deepinfra", data.task).parse(data, reply({"error": "x"}), BASE)

    def test_text_is_required(self) -> None:
        with pytest.raises(UnsupportedInput, match="^text: "):
            adapter("deepinfra", "text-to-speech").prepare(inp("text-to-speech", "m", text=""), BASE)


class TestTranscriptions:
    @pytest.mark.parametrize(
        ("provider", "url"),
        [
            ("deepinfra", f"{BASE}/deepinfra/v1/openai/audio/transcriptions"),
            ("together", f"{BASE}/together/v1/audio/transcriptions"),
        ],
    )
    def test_prepare_uploads_the_file_then_the_fields(self, provider: str, url: str) -> None:
        data = inp(
            "automatic-speech-recognition",
            "openai/whisper-large-v3",
            media=FLAC,
            media_type="audio/flac",
            language="en",
            options={"temperature": 0, "timestamp_granularities": ["segment"], "model": "x"},
        )
        call = adapter(provider, data.task).prepare(data, BASE)
        assert (call.method, call.url, set(call.headers)) == ("POST", url, {"Content-Type"})
        assert form(call) == [
            ("file", "audio.flac", "audio/flac", FLAC),
            ("language", None, None, b"en"),
            ("temperature", None, None, b"0"),
            ("timestamp_granularities", None, None, b'["segment"]'),
            ("model", None, None, b"openai/whisper-large-v3"),
        ]

    @pytest.mark.parametrize(
        ("media_type", "filename", "part_type"),
        [(None, "audio.wav", "application/octet-stream"), ("audio/mpeg", "audio.mp3", "audio/mpeg")],
    )
    def test_file_name_follows_the_media_type(self, media_type: str | None, filename: str, part_type: str) -> None:
        data = inp("automatic-speech-recognition", "m", media=FLAC, media_type=media_type)
        (file, model) = form(adapter("deepinfra", data.task).prepare(data, BASE))
        assert file == ("file", filename, part_type, FLAC) and model == ("model", None, None, b"m")

    def test_same_request_same_bytes(self) -> None:
        data = inp("automatic-speech-recognition", "m", media=FLAC, media_type="audio/flac")
        first, again = (adapter("deepinfra", data.task).prepare(data, BASE) for _ in range(2))
        assert (first.data, first.headers) == (again.data, again.headers)

    def test_together_takes_a_url_as_the_file_field(self) -> None:
        data = inp("automatic-speech-recognition", "m", media=FLAC, media_url="https://a.example/x.flac")
        assert form(adapter("together", data.task).prepare(data, BASE)) == [
            ("file", None, None, b"https://a.example/x.flac"),
            ("model", None, None, b"m"),
        ]

    def test_deepinfra_needs_the_bytes(self) -> None:
        data = inp("automatic-speech-recognition", "m", media_url="https://a.example/x.flac")
        with pytest.raises(UnsupportedInput, match="^audio: "):
            adapter("deepinfra", data.task).prepare(data, BASE)

    @pytest.mark.parametrize("provider", ["deepinfra", "together"])
    def test_reply(self, provider: str) -> None:
        data = inp("automatic-speech-recognition", "m", media=FLAC)
        body = {"text": " hi there", "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": " hi there"}]}
        assert run(provider, data, body) == [Transcript("hi there", [(0.0, 1.5, "hi there")])]
        assert run(provider, data, {"text": "plain"}) == [Transcript("plain")]
        with pytest.raises(ProviderReplyInvalid):
            run(provider, data, {"segments": []})


class TestDeepInfraImages:
    def test_prepare(self) -> None:
        data = inp("text-to-image", "black-forest-labs/FLUX-1-dev", prompt="cat", width=512, height=512, steps=4)
        body: dict[str, Any] = {
            "width": 512,
            "height": 512,
            "num_inference_steps": 4,
            "response_format": "b64_json",
            "prompt": "cat",
            "model": "black-forest-labs/FLUX-1-dev",
        }
        url = f"{BASE}/deepinfra/v1/openai/images/generations"
        assert_call(adapter("deepinfra", data.task).prepare(data, BASE), "POST", url, {**JSON_HEADERS}, body)

    def test_options_cannot_break_the_reply_format(self) -> None:
        data = inp("text-to-image", "m", prompt="cat", options={"response_format": "url", "prompt": "dog"})
        body = adapter("deepinfra", data.task).prepare(data, BASE).json
        assert (body["response_format"], body["prompt"]) == ("b64_json", "cat")

    def test_replies(self) -> None:
        data = inp("text-to-image", "m", prompt="cat")
        assert run("deepinfra", data, {"data": [{"b64_json": b64(PNG)}]}) == [Media(PNG, "image/png")]
        url = "https://deepinfra-cdn.example/out.png"
        assert run("deepinfra", data, {"data": [{"url": url}]}, PNG) == [download(url), Media(PNG, "image/png")]
        for body in ({"data": []}, {"data": [{}]}):
            with pytest.raises(ProviderReplyInvalid):
                run("deepinfra", data, body)


class TestMappingTasks:
    def test_rows_serve_their_own_task_and_novita_minimax_also_image_text_to_video(self) -> None:
        assert mapping_tasks("deepinfra", "feature-extraction") == {"feature-extraction"}
        assert mapping_tasks("novita", "image-to-video") == {"image-to-video", "image-text-to-video"}
        assert mapping_tasks("nobody", "text-to-image") == {"text-to-image"}


def test_inputs_are_unchanged_by_prepare() -> None:
    data = inp("automatic-speech-recognition", "m", media=FLAC, options={"temperature": 0})
    before = TaskInput(**{f: getattr(data, f) for f in data.__dataclass_fields__})
    adapter("together", data.task).prepare(data, BASE)
    assert data == before


def test_choose_takes_a_sibling_mapping_task_only_where_the_adapter_serves_it() -> None:
    routes = [
        ProviderRoute("novita", "MiniMax-H3", "live", "image-text-to-video"),
        ProviderRoute("fal-ai", "fal-ai/minimax", "live", "image-text-to-video"),
        ProviderRoute("together", "Wan-AI/Wan2.2-I2V-A14B", "live", "image-to-video"),
    ]
    chosen = choose("m", routes, "image-to-video", None, lambda _: True, lambda p: mapping_tasks(p, "image-to-video"))
    assert [r.provider for r in chosen] == ["novita", "together"]
    assert [r.provider for r in choose("m", routes, "image-to-video", None, lambda _: True)] == ["together"]
