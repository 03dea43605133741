"""zai-org's async images, novita's MiniMax H3 image-to-video job, and Replicate text-to-speech. No sockets."""

from __future__ import annotations

from typing import Any

import pytest

from services.hf.providers import HttpCall, Media, Pending, ProviderJobFailed, ProviderReplyInvalid, UnsupportedInput
from tests.unit.provider_kit import (
    BASE,
    FLAC,
    JSON_HEADERS,
    MP4,
    PNG,
    adapter,
    assert_call,
    b64,
    download,
    inp,
    run,
)

ZAI_HEADERS = {
    "Accept": "image/png",
    "Accept-Language": "en-US,en",
    "x-source-channel": "hugging_face",
    "Content-Type": "application/json",
}
ZAI_IMAGE = "https://aigc-files.bigmodel.cn/api/cogview/out.png"


def zai(status: str, image: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "glm-image", "id": "t-1", "request_id": "r-1", "task_status": status}
    if image is not None:
        body["image_result"] = [{"url": image}]
    return body


class TestZai:
    def test_prepare(self) -> None:
        data = inp(
            "text-to-image", "glm-image", prompt="cat", width=1024, height=768, seed=3, options={"quality": "hd"}
        )
        body = {"model": "glm-image", "prompt": "cat", "size": "1024x768", "seed": 3, "quality": "hd"}
        url = f"{BASE}/zai-org/api/paas/v4/async/images/generations"
        assert_call(adapter("zai-org", data.task).prepare(data, BASE), "POST", url, ZAI_HEADERS, body)

    def test_size_needs_both_sides(self) -> None:
        data = inp("text-to-image", "glm-image", prompt="cat", width=1024)
        assert adapter("zai-org", data.task).prepare(data, BASE).json == {"model": "glm-image", "prompt": "cat"}

    def test_polls_at_once_then_every_five_seconds_to_the_download(self) -> None:
        data = inp("text-to-image", "glm-image", prompt="cat")
        steps = run("zai-org", data, zai("PROCESSING"), zai("PROCESSING"), zai("SUCCESS", ZAI_IMAGE), PNG)
        poll = HttpCall("GET", f"{BASE}/zai-org/api/paas/v4/async-result/t-1", ZAI_HEADERS, purpose="poll")
        assert steps == [
            Pending(poll, "running", None, 0.0),
            Pending(poll, "running", None, 5.0),
            download(ZAI_IMAGE),
            Media(PNG, "image/png"),
        ]

    def test_an_already_finished_submit_needs_no_poll(self) -> None:
        data = inp("text-to-image", "glm-image", prompt="cat")
        assert run("zai-org", data, zai("SUCCESS", ZAI_IMAGE), PNG) == [download(ZAI_IMAGE), Media(PNG, "image/png")]

    @pytest.mark.parametrize(
        ("replies", "error", "match"),
        [
            ([zai("FAIL")], ProviderJobFailed, "t-1 failed"),
            ([zai("PROCESSING"), zai("FAIL")], ProviderJobFailed, "t-1 failed"),
            ([{"task_status": "PROCESSING"}], ProviderReplyInvalid, "no task id"),
            ([zai("PROCESSING"), zai("SUCCESS")], ProviderReplyInvalid, "image_result"),
        ],
    )
    def test_failures(self, replies: list[Any], error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            run("zai-org", inp("text-to-image", "glm-image", prompt="cat"), *replies)


MINIMAX_VIDEO = "https://faas-output-video.novita.ai/minimax/out.mp4"


def minimax(status: str, **extra: Any) -> dict[str, Any]:
    return {"task": {"status": status, **extra}}


class TestNovitaMinimax:
    def test_prepare(self) -> None:
        data = inp(
            "image-to-video",
            "MiniMax-H3",
            media=PNG,
            media_type="image/png",
            prompt="slow pan",
            num_frames=240,
            seed=7,
            options={"negative_prompt": "x", "ratio": "16:9", "watermark": False},
        )
        body = {
            "watermark": False,
            "model": "MiniMax-H3",
            "content": [
                {"type": "text", "text": "slow pan"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}, "role": "first_frame"},
            ],
            "resolution": "768P",
            "duration": 10,
            "ratio": "adaptive",
        }
        url = f"{BASE}/novita/v3/minimax/v2/video_generation"
        assert_call(adapter("novita", data.task).prepare(data, BASE), "POST", url, JSON_HEADERS, body)

    @pytest.mark.parametrize(("num_frames", "seconds"), [(None, 4), (24, 4), (120, 5), (1000, 15)])
    def test_duration_follows_the_frames(self, num_frames: int | None, seconds: int) -> None:
        data = inp("image-to-video", "MiniMax-H3", media=PNG, prompt="go", num_frames=num_frames)
        assert adapter("novita", data.task).prepare(data, BASE).json["duration"] == seconds

    def test_options_may_set_resolution_and_duration(self) -> None:
        data = inp("image-to-video", "MiniMax-H3", media=PNG, prompt="go", options={"resolution": "2K", "duration": 6})
        body = adapter("novita", data.task).prepare(data, BASE).json
        assert (body["resolution"], body["duration"]) == ("2K", 6)

    def test_an_image_url_goes_as_is(self) -> None:
        data = inp("image-to-video", "MiniMax-H3", media=PNG, media_url="https://img.example/a.png", prompt="go")
        content = adapter("novita", data.task).prepare(data, BASE).json["content"]
        assert content[1]["image_url"] == {"url": "https://img.example/a.png"}

    @pytest.mark.parametrize(("model", "prompt", "field"), [("wan-i2v", "go", "model"), ("MiniMax-H3", "  ", "prompt")])
    def test_refused_inputs(self, model: str, prompt: str, field: str) -> None:
        data = inp("image-to-video", model, media=PNG, prompt=prompt)
        with pytest.raises(UnsupportedInput, match=f"^{field}: "):
            adapter("novita", data.task).prepare(data, BASE)

    def test_polling_to_download(self) -> None:
        data = inp("image-to-video", "MiniMax-H3", media=PNG, prompt="go")
        done = minimax("succeeded", content={"url": MINIMAX_VIDEO})
        steps = run("novita", data, {"task_id": "a b"}, minimax("queued"), minimax("running"), done, MP4)
        url = f"{BASE}/novita/v3/minimax/v2/query/video_generation/a%20b"
        poll = HttpCall("GET", url, JSON_HEADERS, purpose="poll")
        assert steps == [
            Pending(poll, "queued", None, 0.0),
            Pending(poll, "queued", None, 5.0),
            Pending(poll, "running", None, 5.0),
            download(MINIMAX_VIDEO),
            Media(MP4, "video/mp4"),
        ]

    @pytest.mark.parametrize(
        ("last", "error", "match"),
        [
            (minimax("failed", error={"message": "content policy"}), ProviderJobFailed, "content policy"),
            (minimax("cancelled"), ProviderJobFailed, "task cancelled"),
            (minimax("succeeded"), ProviderReplyInvalid, "content.url"),
            ({"status": "succeeded"}, ProviderReplyInvalid, "novita"),
        ],
    )
    def test_failures(self, last: Any, error: type[Exception], match: str) -> None:
        data = inp("image-to-video", "MiniMax-H3", media=PNG, prompt="go")
        with pytest.raises(error, match=match):
            run("novita", data, {"task_id": "t"}, last)


class TestReplicateSpeech:
    def test_prepare(self) -> None:
        data = inp("text-to-speech", "jaaari/kokoro-82m:f559", text="hello", voice="af_bella", options={"speed": 1})
        body = {"input": {"text": "hello", "voice": "af_bella", "speed": 1}, "version": "f559"}
        headers = {"Prefer": "wait", "Content-Type": "application/json"}
        assert_call(
            adapter("replicate", data.task).prepare(data, BASE),
            "POST",
            f"{BASE}/replicate/v1/predictions",
            headers,
            body,
        )

    @pytest.mark.parametrize("output", ["https://replicate.delivery/o.flac", ["https://replicate.delivery/o.flac"]])
    def test_output_url_is_downloaded(self, output: Any) -> None:
        data = inp("text-to-speech", "o/m", text="hello")
        prediction = {"id": "p", "status": "succeeded", "output": output}
        steps = run("replicate", data, prediction, FLAC)
        assert steps == [download("https://replicate.delivery/o.flac"), Media(FLAC, "audio/flac")]
