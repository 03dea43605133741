"""The fake router's media flows, driven by the real provider adapters: what they send, the fake accepts.

Each flow runs the adapter's `prepare`/`parse` loop against the fake app over a local socket, after resolving
the provider's model id through the fake Hub, exactly as the consumer will. Downloads go to the fake CDN,
which refuses any Authorization header, so every passing flow also proves the token stayed on the router.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from services.dev.fake_router import MODELS, TRANSCRIPT_TEXT, FakeRouter, Fault, files, media_key
from services.hf.providers import (
    PROVIDERS,
    Download,
    HttpCall,
    HttpReply,
    Media,
    Pending,
    ProviderJobFailed,
    ProviderReplyInvalid,
    Step,
    Task,
    TaskInput,
    Transcript,
    Vectors,
    dims_of,
    floats_of,
    get_adapter,
    mapping_tasks,
)

TOKEN = "hf_fake_media_token"
IMAGE = files.png(media_key("input image"))
AUDIO = files.wav(media_key("input audio"))
ROWS = [(provider, task) for provider, adapters in PROVIDERS.items() for task in adapters]
OUTPUT_TYPES = {
    "text-to-image": "image/png",
    "image-to-image": "image/png",
    "text-to-video": "video/mp4",
    "image-to-video": "video/mp4",
    "text-to-speech": "audio/wav",
}


NEEDS: dict[tuple[str, str], dict[str, Any]] = {("together", "text-to-speech"): {"voice": "af_alloy"}}
"""Inputs a row cannot do without beyond the task's presets (Together refuses speech without a voice)."""


class UpstreamStatus(Exception):
    """A non-2xx answer, as the executor would turn it into a ServiceError."""

    def __init__(self, call: HttpCall, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"{call.method} {call.url} -> {status}: {body[:200]!r}")
        self.call = call
        self.status = status
        self.headers = headers
        self.body = body


@dataclass
class Fake:
    router: FakeRouter
    session: aiohttp.ClientSession

    async def send(self, call: HttpCall) -> HttpReply:
        """Send a call as the executor does: the token only on authenticated calls, JSON or raw body."""
        headers = dict(call.headers)
        if call.authenticated:
            headers["Authorization"] = f"Bearer {TOKEN}"
        data = orjson.dumps(call.json) if call.json is not None else call.data
        async with self.session.request(call.method, call.url, headers=headers, data=data) as response:
            body = await response.read()
            found = {name.lower(): value for name, value in response.headers.items()}
            if not 200 <= response.status < 300:
                raise UpstreamStatus(call, response.status, found, body)
            return HttpReply(response.status, found, body, call)

    async def get(self, path: str, *, token: bool = True) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
        async with self.session.get(self.router.url + path, headers=headers) as response:
            return response.status, dict(response.headers), await response.read()

    async def provider_model(self, hf_model: str, provider: str, task: str) -> str:
        """The provider's id for `hf_model`, from the fake Hub, as the consumer resolves it."""
        status, _, body = await self.get(f"/api/models/{hf_model}?expand[]=inferenceProviderMapping")
        assert status == 200
        entry = orjson.loads(body)["inferenceProviderMapping"][provider]
        assert entry["task"] in mapping_tasks(provider, task)
        return str(entry["providerId"])

    async def run(self, provider: str, data: TaskInput, *, max_calls: int = 20) -> tuple[Step, list[Pending]]:
        """The adapter's flow to its final step; also the `Pending` steps seen on the way."""
        adapter = get_adapter(provider, data.task)
        call = adapter.prepare(data, self.router.url)
        pending: list[Pending] = []
        for _ in range(max_calls):
            step = adapter.parse(data, await self.send(call), self.router.url)
            match step:
                case Pending(call=next_call):
                    pending.append(step)
                    call = next_call
                case Download(call=next_call):
                    call = next_call
                case _:
                    return step, pending
        raise AssertionError(f"flow did not finish in {max_calls} calls")


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    router = FakeRouter(token=TOKEN)
    server = TestServer(router.app, host="127.0.0.1")
    await server.start_server()
    router.url = str(server.make_url("")).rstrip("/")
    session = aiohttp.ClientSession()
    try:
        yield Fake(router, session)
    finally:
        await session.close()
        await server.close()


def model_for(provider: str, task: str) -> str:
    accepted = mapping_tasks(provider, task)
    return next(hf for hf, model in MODELS.items() if (e := model.providers.get(provider)) and e.task in accepted)


def task_input(task: Task, provider_model: str, hf_model: str, **extra: Any) -> TaskInput:
    presets: dict[str, dict[str, Any]] = {
        "text-to-image": {"prompt": "a red fox", "width": 64, "height": 64, "steps": 4, "seed": 1},
        "text-to-video": {"prompt": "a red fox running", "num_frames": 16},
        "image-to-image": {"media": IMAGE, "media_type": "image/png", "prompt": "make it snow"},
        "image-to-video": {"media": IMAGE, "media_type": "image/png", "prompt": "the fox runs"},
        "automatic-speech-recognition": {"media": AUDIO, "media_type": "audio/wav"},
        "feature-extraction": {"texts": ["hello", "world"], "normalize": True},
        "text-to-speech": {"text": "hello there"},
    }
    return TaskInput(task=task, provider_model=provider_model, hf_model=hf_model, **(presets[task] | extra))


async def run_row(fake: Fake, provider: str, task: Task, **extra: Any) -> tuple[Step, list[Pending]]:
    hf_model = model_for(provider, task)
    provider_model = await fake.provider_model(hf_model, provider, task)
    return await fake.run(provider, task_input(task, provider_model, hf_model, **extra))


def fal_submit(data: TaskInput, base_url: str) -> HttpCall:
    """The queue submit the fal adapter builds for a video task."""
    return get_adapter("fal-ai", data.task).prepare(data, base_url)


def fal_call(method: str, queue_url: str, base_url: str, *, queue: bool = True) -> HttpCall:
    """A call to a queue.fal.run URL from a submit reply, through the router, as the clients route it."""
    url = queue_url.replace("https://queue.fal.run", f"{base_url}/fal-ai")
    return HttpCall(method, url + ("?_subdomain=queue" if queue else ""), {})


def assert_final(task: str, step: Step, hf_model: str) -> None:
    match step:
        case Media(data=data, content_type=content_type):
            assert content_type == OUTPUT_TYPES[task]
            assert data[:4] in (b"\x89PNG", b"RIFF") or data[4:8] == b"ftyp"
        case Vectors(vectors=passed):
            vectors = [floats_of(v) for v in passed]
            assert [dims_of(v) for v in passed] == [len(v) for v in vectors]
            dims = {
                "intfloat/multilingual-e5-large": 1024,
                "BAAI/bge-base-en-v1.5": 768,
                "BAAI/bge-m3": 1024,
                "BAAI/bge-multilingual-gemma2": 3584,
            }[hf_model]
            assert [len(v) for v in vectors] == [dims, dims]
            assert all(math.isclose(math.hypot(*v), 1.0) for v in vectors)
            assert vectors[0] != vectors[1]
        case Transcript(text=text):
            assert text == TRANSCRIPT_TEXT
        case _:
            raise AssertionError(f"unexpected final step {step!r}")


class TestMapping:
    @pytest.mark.parametrize(("provider", "task"), ROWS)
    def test_every_adapter_row_is_reachable_through_a_builtin_model(self, provider: str, task: str) -> None:
        assert model_for(provider, task)

    async def test_both_expand_spellings_give_the_mapping(self, fake: Fake) -> None:
        path = "/api/models/black-forest-labs/FLUX.1-dev"
        status, _, body = await fake.get(f"{path}?expand[]=inferenceProviderMapping")
        assert status == 200
        mapping = orjson.loads(body)
        assert set(mapping) == {"_id", "id", "inferenceProviderMapping"}
        assert mapping["inferenceProviderMapping"]["fal-ai"] == {
            "status": "live",
            "providerId": "fal-ai/flux/dev",
            "task": "text-to-image",
            "isModelAuthor": False,
        }
        assert mapping["inferenceProviderMapping"]["nscale"]["status"] == "staging"
        _, _, other = await fake.get(f"{path}?expand=inferenceProviderMapping")
        assert orjson.loads(other) == mapping

    async def test_without_expand_the_hub_gives_the_pipeline_tag(self, fake: Fake) -> None:
        status, _, body = await fake.get("/api/models/openai/whisper-large-v3")
        assert status == 200
        info = orjson.loads(body)
        assert (info["id"], info["pipeline_tag"]) == ("openai/whisper-large-v3", "automatic-speech-recognition")
        assert "inferenceProviderMapping" not in info

    async def test_unknown_model_is_repo_not_found(self, fake: Fake) -> None:
        status, headers, _ = await fake.get("/api/models/nobody/nothing?expand[]=inferenceProviderMapping")
        assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")

    async def test_unknown_expand_field_is_refused(self, fake: Fake) -> None:
        status, _, _ = await fake.get("/api/models/openai/whisper-large-v3?expand[]=downloads")
        assert status == 400

    async def test_models_table_is_per_router(self, fake: Fake) -> None:
        fake.router.models.clear()
        status, _, _ = await fake.get("/api/models/openai/whisper-large-v3")
        assert status == 404
        assert "openai/whisper-large-v3" in MODELS

    async def test_fake_model_names_ask_for_faults(self, fake: Fake) -> None:
        status, _, _ = await fake.get("/api/models/fake/status-503?expand[]=inferenceProviderMapping")
        assert status == 503


class TestFlows:
    @pytest.mark.parametrize(("provider", "task"), ROWS)
    async def test_each_adapter_row_runs_end_to_end(self, fake: Fake, provider: str, task: Task) -> None:
        step, _ = await run_row(fake, provider, task, **NEEDS.get((provider, task), {}))
        assert_final(task, step, model_for(provider, task))
        paths = [r.path for r in fake.router.requests]
        assert paths[0].startswith("/api/models/")
        assert all(p.startswith(f"/{provider}/") for p in paths[1:] if not p.startswith("/cdn/"))

    @pytest.mark.parametrize(
        ("task", "extra", "content_type"),
        [
            ("image-to-image", {"prompt": None}, "image/png"),
            ("automatic-speech-recognition", {"language": "en"}, "application/json"),
        ],
    )
    async def test_hf_inference_takes_raw_bytes_and_base64_json(
        self, fake: Fake, task: Task, extra: dict[str, Any], content_type: str
    ) -> None:
        step, _ = await run_row(fake, "hf-inference", task, **extra)
        assert_final(task, step, model_for("hf-inference", task))
        assert fake.router.requests[1].headers["content-type"] == content_type

    async def test_media_replies_point_at_the_cdn_and_carry_no_token(self, fake: Fake) -> None:
        await run_row(fake, "fal-ai", "text-to-video")
        downloads = [r for r in fake.router.requests if r.path.startswith("/cdn/")]
        assert len(downloads) == 1 and downloads[0].path.endswith(".mp4")
        assert "authorization" not in downloads[0].headers
        calls = [r for r in fake.router.requests if not r.path.startswith("/cdn/")]
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in calls)

    async def test_different_prompts_give_different_files(self, fake: Fake) -> None:
        first, _ = await run_row(fake, "fal-ai", "text-to-image", prompt="a cat")
        again, _ = await run_row(fake, "wavespeed", "text-to-image", prompt="a cat")
        other, _ = await run_row(fake, "fal-ai", "text-to-image", prompt="a dog")
        assert isinstance(first, Media) and isinstance(again, Media) and isinstance(other, Media)
        assert first.data == again.data == files.png(media_key("a cat"))
        assert first.data != other.data

    async def test_fal_polls_follow_the_response_url_not_the_submit_path(self, fake: Fake) -> None:
        await run_row(fake, "fal-ai", "image-to-image")
        paths = [r.path for r in fake.router.requests[1:]]
        assert paths[0] == "/fal-ai/fal-ai/flux-kontext/dev"
        assert all(p.startswith("/fal-ai/fal-ai/flux-kontext/requests/") for p in paths[1:-1])
        assert all(r.query == {"_subdomain": "queue"} for r in fake.router.requests[1:-1])


class TestJobs:
    @pytest.mark.parametrize("polls", [0, 1, 2, 4])
    async def test_fal_queue_walks_in_queue_in_progress_completed(self, fake: Fake, polls: int) -> None:
        fake.router.job_polls = polls
        _, pending = await run_row(fake, "fal-ai", "text-to-video")
        polling = [p for p in pending if p.call.purpose == "poll"]
        assert len(polling) == polls + 1  # the submit reply's step, then one per poll that was not done
        assert [p.status for p in polling] == ["queued"] * max(polls, 1) + ["running"] * (polls > 0)
        positions = [p.queue_position for p in polling if p.status == "queued"]
        assert positions == list(range(max(polls - 1, 0), -1, -1))
        statuses = [r for r in fake.router.requests if r.path.endswith("/status")]
        assert len(statuses) == polls + 1

    @pytest.mark.parametrize(
        ("provider", "task"),
        [("together", "text-to-video"), ("wavespeed", "image-to-video"), ("novita", "image-to-video")],
    )
    async def test_other_jobs_take_job_polls_polls(self, fake: Fake, provider: str, task: Task) -> None:
        fake.router.job_polls = 3
        step, pending = await run_row(fake, provider, task)
        assert isinstance(step, Media)
        assert [p.status for p in pending] == ["queued", "queued", "queued", "running"]

    async def test_slow_jobs_stay_pending(self, fake: Fake) -> None:
        fake.router.job_polls = 1_000
        with pytest.raises(AssertionError, match="did not finish"):
            await run_row(fake, "wavespeed", "text-to-video")

    @pytest.mark.parametrize(
        ("provider", "task"),
        [
            ("fal-ai", "text-to-video"),
            ("novita", "image-to-video"),
            ("replicate", "text-to-image"),
            ("together", "image-to-video"),
            ("wavespeed", "text-to-image"),
            ("zai-org", "text-to-image"),
        ],
    )
    async def test_job_fail_next_ends_one_job_in_the_failed_state(self, fake: Fake, provider: str, task: Task) -> None:
        fake.router.job_fail_next = True
        # Z.ai's FAIL carries no message: the adapter names the task instead.
        with pytest.raises(ProviderJobFailed, match="task .* failed" if provider == "zai-org" else "simulated failure"):
            await run_row(fake, provider, task)
        assert fake.router.job_fail_next is False
        step, _ = await run_row(fake, provider, task)
        assert isinstance(step, Media)

    async def test_a_failed_fal_job_reports_its_error_and_its_result_is_an_http_error(self, fake: Fake) -> None:
        fake.router.job_polls = 0
        fake.router.job_fail_next = True
        data = task_input("text-to-video", "fal-ai/ltx-video", "Lightricks/LTX-Video")
        submitted = orjson.loads((await fake.send(fal_submit(data, fake.router.url))).body)
        status = orjson.loads((await fake.send(fal_call("GET", submitted["status_url"], fake.router.url))).body)
        assert (status["status"], status["error_type"]) == ("COMPLETED", "runner_disconnected")
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(fal_call("GET", submitted["response_url"], fake.router.url))
        assert caught.value.status == 500 and "detail" in orjson.loads(caught.value.body)

    async def test_replicate_not_ready_answers_output_null(self, fake: Fake) -> None:
        fake.router.replicate_ready = False
        with pytest.raises(ProviderReplyInvalid, match="not finished"):
            await run_row(fake, "replicate", "text-to-video")
        reply = orjson.loads(fake.router.requests[-1].body)
        assert "input" in reply

    async def test_replicate_versioned_ids_use_the_predictions_route(self, fake: Fake) -> None:
        await run_row(fake, "replicate", "automatic-speech-recognition")
        call = fake.router.requests[1]
        assert call.path == "/replicate/v1/predictions"
        assert call.headers["prefer"] == "wait"
        assert call.json()["version"] == "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"


class TestFailureSwitches:
    async def test_a_queued_fault_answers_the_next_provider_request(self, fake: Fake) -> None:
        data = task_input("text-to-image", "black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-dev")
        fake.router.faults.append(Fault.status(503, retry_after=2))
        with pytest.raises(UpstreamStatus) as caught:
            await fake.run("hf-inference", data)
        assert (caught.value.status, caught.value.headers["retry-after"]) == (503, "2")
        assert "currently loading" in orjson.loads(caught.value.body)["error"]
        step, _ = await fake.run("hf-inference", data)
        assert isinstance(step, Media)

    async def test_a_queued_fault_answers_the_next_hub_request(self, fake: Fake) -> None:
        fake.router.faults.append(Fault.status(429))
        status, _, _ = await fake.get("/api/models/openai/whisper-large-v3")
        assert status == 429

    async def test_poll_faults_skip_the_submit_and_hit_the_first_poll(self, fake: Fake) -> None:
        fake.router.poll_faults.append(Fault.status(502))
        with pytest.raises(UpstreamStatus) as caught:
            await run_row(fake, "together", "text-to-video")
        assert caught.value.status == 502
        assert [r.method for r in fake.router.requests] == ["GET", "POST", "GET"]

    async def test_cdn_faults_hit_the_download(self, fake: Fake) -> None:
        fake.router.cdn_faults.append(Fault.status(404))
        with pytest.raises(UpstreamStatus) as caught:
            await run_row(fake, "novita", "text-to-video")
        assert caught.value.status == 404
        assert caught.value.call.url.startswith(f"{fake.router.url}/cdn/")

    async def test_a_stall_fault_delays_the_answer_then_serves_it(self, fake: Fake) -> None:
        fake.router.faults.append(Fault.stall(seconds=0.01))
        step, _ = await run_row(fake, "nscale", "text-to-image")
        assert isinstance(step, Media)


class TestRoutes:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/models/openai/whisper-large-v3"),
            ("POST", "/hf-inference/models/black-forest-labs/FLUX.1-dev"),
            ("POST", "/hf-inference/models/BAAI/bge-base-en-v1.5/pipeline/feature-extraction"),
            ("POST", "/fal-ai/fal-ai/flux/dev"),
            ("GET", "/fal-ai/fal-ai/flux/requests/x/status?_subdomain=queue"),
            ("PUT", "/fal-ai/fal-ai/flux/requests/x/cancel?_subdomain=queue"),
            ("POST", "/replicate/v1/models/black-forest-labs/flux-dev/predictions"),
            ("POST", "/replicate/v1/predictions"),
            ("POST", "/together/v1/images/generations"),
            ("POST", "/together/v1/embeddings"),
            ("POST", "/together/v2/videos"),
            ("GET", "/together/v2/videos/x"),
            ("POST", "/nscale/v1/images/generations"),
            ("POST", "/novita/v3/hf/hunyuan-video-fast"),
            ("POST", "/wavespeed/api/v3/wavespeed-ai/flux-dev"),
            ("GET", "/wavespeed/api/v3/predictions/x/result"),
            ("POST", "/deepinfra/v1/openai/embeddings"),
            ("POST", "/deepinfra/v1/openai/audio/speech"),
            ("POST", "/deepinfra/v1/openai/audio/transcriptions"),
            ("POST", "/deepinfra/v1/openai/images/generations"),
            ("POST", "/scaleway/v1/embeddings"),
            ("POST", "/together/v1/audio/speech"),
            ("POST", "/together/v1/audio/transcriptions"),
            ("POST", "/zai-org/api/paas/v4/async/images/generations"),
            ("GET", "/zai-org/api/paas/v4/async-result/x"),
            ("POST", "/novita/v3/minimax/v2/video_generation"),
            ("GET", "/novita/v3/minimax/v2/query/video_generation/x"),
        ],
    )
    async def test_every_route_needs_a_bearer_token(self, fake: Fake, method: str, path: str) -> None:
        async with fake.session.request(method, fake.router.url + path, json={}) as response:
            assert response.status == 401
            assert "www-authenticate" in response.headers

    async def test_the_cdn_refuses_a_token(self, fake: Fake) -> None:
        name = f"/cdn/{media_key('x')}.wav"
        assert (await fake.get(name))[0] == 403
        status, headers, body = await fake.get(name, token=False)
        assert (status, headers["Content-Type"], body) == (200, "audio/wav", files.wav(media_key("x")))
        assert (await fake.get("/cdn/../etc/passwd", token=False))[0] == 404
        assert (await fake.get("/cdn/0123456789abcdef.exe", token=False))[0] == 404

    async def test_provider_routes_want_provider_ids_not_hf_ids(self, fake: Fake) -> None:
        data = task_input("text-to-image", "black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-dev")
        with pytest.raises(UpstreamStatus) as caught:
            await fake.run("fal-ai", data)
        assert caught.value.status == 404

    async def test_fal_refuses_audio_labelled_audio_wav(self, fake: Fake) -> None:
        body = {"audio_url": "data:audio/wav;base64,UklGRg=="}
        call = HttpCall("POST", f"{fake.router.url}/fal-ai/fal-ai/whisper", {}, json=body)
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(call)
        assert caught.value.status == 422

    @pytest.mark.parametrize(
        ("path", "headers", "body"),
        [
            ("/together/v1/audio/speech", {}, {"input": "hi", "model": "hexgrad/Kokoro-82M"}),
            ("/deepinfra/v1/openai/embeddings", {}, {"input": "hi", "model": "BAAI/bge-base-en-v1.5"}),
            ("/zai-org/api/paas/v4/async/images/generations", {}, {"prompt": "a fox", "model": "glm-image"}),
            (
                "/novita/v3/minimax/v2/video_generation",
                {},
                {
                    "model": "MiniMax-H3",
                    "content": [{"type": "text", "text": "go"}],
                    "duration": 4,
                    "resolution": "768P",
                },
            ),
        ],
    )
    async def test_provider_rules_are_kept(
        self, fake: Fake, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> None:
        """No voice for Together, a model mapped elsewhere, no x-source-channel for Z.ai, no first frame."""
        call = HttpCall("POST", f"{fake.router.url}{path}", headers, json=body)
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(call)
        assert caught.value.status in (400, 404)

    async def test_transcriptions_want_an_uploaded_file(self, fake: Fake) -> None:
        for provider, prefix in (("deepinfra", "/deepinfra/v1/openai"), ("together", "/together/v1")):
            data = task_input("automatic-speech-recognition", "openai/whisper-large-v3", "openai/whisper-large-v3")
            call = get_adapter(provider, data.task).prepare(data, fake.router.url)
            assert call.url == f"{fake.router.url}{prefix}/audio/transcriptions"
            bad = HttpCall("POST", call.url, {}, json={"model": "openai/whisper-large-v3"})
            with pytest.raises(UpstreamStatus) as caught:
                await fake.send(bad)
            assert caught.value.status == 400
        url_only = task_input(
            "automatic-speech-recognition", "openai/whisper-large-v3", "x", media_url="https://a.example/x.wav"
        )
        step, _ = await fake.run("together", url_only)
        assert isinstance(step, Transcript) and step.text == TRANSCRIPT_TEXT

    async def test_bare_hf_inference_route_is_not_feature_extraction(self, fake: Fake) -> None:
        call = HttpCall(
            "POST", f"{fake.router.url}/hf-inference/models/BAAI/bge-base-en-v1.5", {}, json={"inputs": "x"}
        )
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(call)
        assert caught.value.status == 400

    async def test_fal_cancel_is_recorded_and_ends_the_job(self, fake: Fake) -> None:
        data = task_input("text-to-video", "fal-ai/ltx-video", "Lightricks/LTX-Video")
        submitted = orjson.loads((await fake.send(fal_submit(data, fake.router.url))).body)
        assert (submitted["status"], submitted["queue_position"]) == ("IN_QUEUE", 1)
        reply = await fake.send(fal_call("PUT", submitted["cancel_url"], fake.router.url))
        assert (reply.status, orjson.loads(reply.body)) == (202, {"status": "CANCELLATION_REQUESTED"})
        assert fake.router.cancelled_jobs == [submitted["request_id"]]
        status = orjson.loads((await fake.send(fal_call("GET", submitted["status_url"], fake.router.url))).body)
        assert (status["status"], status["error_type"]) == ("COMPLETED", "request_cancelled")
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(fal_call("PUT", submitted["cancel_url"], fake.router.url))
        assert orjson.loads(caught.value.body) == {"status": "ALREADY_COMPLETED"}

    async def test_fal_request_routes_need_the_queue_subdomain(self, fake: Fake) -> None:
        data = task_input("text-to-video", "fal-ai/ltx-video", "Lightricks/LTX-Video")
        submitted = orjson.loads((await fake.send(fal_submit(data, fake.router.url))).body)
        with pytest.raises(UpstreamStatus) as caught:
            await fake.send(fal_call("GET", submitted["status_url"], fake.router.url, queue=False))
        assert caught.value.status == 404


class TestFiles:
    def test_png_is_a_valid_64x64_rgb_image(self) -> None:
        data = files.png(media_key("a fox"))
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        chunks, at = [], 8
        while at < len(data):
            (length,) = struct.unpack(">I", data[at : at + 4])
            kind, payload = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
            assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + payload)
            chunks.append((kind, payload))
            at += 12 + length
        assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
        assert struct.unpack(">IIBB", chunks[0][1][:10]) == (64, 64, 8, 2)
        assert len(zlib.decompress(chunks[1][1])) == 64 * (1 + 64 * 3)
        assert files.png(media_key("a fox")) == data != files.png(media_key("a cat"))

    def test_wav_is_a_half_second_tone(self) -> None:
        with wave.open(io.BytesIO(files.wav(media_key("hi")))) as audio:
            assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 16_000)
            assert audio.getnframes() == 8_000
        assert files.wav(media_key("hi")) != files.wav(media_key("ho"))

    def test_mp4_boxes_nest_and_the_sample_offset_points_into_mdat(self) -> None:
        data = files.mp4(media_key("clip"))

        def boxes(blob: bytes) -> dict[bytes, bytes]:
            found, at = {}, 0
            while at < len(blob):
                size, kind = struct.unpack(">I4s", blob[at : at + 8])
                assert size >= 8 and at + size <= len(blob)
                found[kind] = blob[at + 8 : at + size]
                at += size
            return found

        top = boxes(data)
        assert list(top) == [b"ftyp", b"moov", b"mdat"]
        assert top[b"ftyp"][:4] == b"isom"
        trak = boxes(top[b"moov"])[b"trak"]
        stbl = boxes(boxes(boxes(trak)[b"mdia"])[b"minf"])[b"stbl"]
        (offset,) = struct.unpack(">I", boxes(stbl)[b"stco"][8:12])
        (size,) = struct.unpack(">I", boxes(stbl)[b"stsz"][12:16])
        assert data[offset : offset + size] == top[b"mdat"]
        assert files.mp4(media_key("clip")) != files.mp4(media_key("other"))

    @pytest.mark.skipif(shutil.which("file") is None, reason="needs the file(1) sniffer")
    @pytest.mark.parametrize(("ext", "mime"), [("png", "image/png"), ("wav", "audio/x-wav"), ("mp4", "video/mp4")])
    def test_file_recognises_each_file(self, ext: files.Extension, mime: str) -> None:
        found = subprocess.run(
            ["file", "--brief", "--mime-type", "-"],
            input=files.RENDERERS[ext](media_key("sniff")),
            capture_output=True,
            check=True,
        )
        assert found.stdout.decode().strip() == mime
