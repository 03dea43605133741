"""The template every adapter fills in, and the small helpers the adapters share."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec

from .errors import ProviderReplyInvalid, UnsupportedInput
from .media import downloaded_media
from .types import HttpCall, HttpReply, JobStatus, Pending, Provider, Purpose, Step, Task, TaskInput

T = TypeVar("T")

IMAGE_TASKS: frozenset[Task] = frozenset({"text-to-image", "image-to-image"})


class TaskAdapter:
    """One provider x task: builds the upstream calls and reads every reply of the flow. No I/O, no state.

    The executor drives a flow with one loop, the same for every adapter:

        call = adapter.prepare(inp, base_url)                # purpose "submit"
        while True:
            reply = send(call)                               # non-2xx -> ServiceError, never reaches parse
            step = adapter.parse(inp, HttpReply(status, headers, body, call=call), base_url)
            match step:
                case Pending(call=next_call, interval_s=s):  # queued job: sleep s, then poll / fetch result
                    call = next_call
                case Download(call=next_call):               # unauthenticated GET of the media URL
                    call = next_call
                case Media() | Vectors() | Transcript():
                    return step

    The downloaded bytes come back through `parse` as well (purpose "download"), so the adapter decides
    what they are (media type, or text for a transcript file). A job's result fetch is a `Pending` with
    `status="completed"` and no wait. The executor owns deadlines and the number of polls.

    `prepare` calls, in order: `_route`, `_headers`, then `_body` (raw bytes) or else `_payload` (JSON),
    and adds the Content-Type itself.
    `parse` dispatches on the purpose of the call the reply answers: `_parse_submit`, `_parse_poll`,
    `_parse_result` or `_parse_download`; one-shot flows only implement `_parse_output`.
    """

    provider: ClassVar[Provider]
    task: ClassVar[Task]
    poll_interval_s: ClassVar[float] = 0.5
    also_serves: ClassVar[frozenset[str]] = frozenset()
    """Hub mapping tasks besides `task` whose models this adapter runs (the Hub files some under a sibling task)."""
    wire: ClassVar[str] = ""
    """How the row talks to the provider, in a few words; the README's provider table is generated from it."""

    def prepare(self, inp: TaskInput, base_url: str) -> HttpCall:
        """The submit call. Not overridden."""
        if inp.task != self.task:
            raise ValueError(f"{self.provider} {self.task} adapter given a {inp.task} input")
        route = self._route(inp)
        headers = self._headers(inp)
        raw = self._body(inp)
        if raw is not None:
            data, content_type = raw
            if content_type:
                headers["Content-Type"] = content_type
            return HttpCall("POST", self._url(base_url, route), headers, data=data)
        headers["Content-Type"] = "application/json"
        return HttpCall("POST", self._url(base_url, route), headers, json=self._payload(inp))

    def parse(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        """The next step after any 2xx reply of the flow. Not overridden."""
        match reply.purpose:
            case "submit":
                return self._parse_submit(inp, reply, base_url)
            case "poll":
                return self._parse_poll(inp, reply, base_url)
            case "result":
                return self._parse_result(inp, reply, base_url)
            case "download":
                return self._parse_download(inp, reply)

    def cancel(self, poll: HttpCall) -> HttpCall | None:
        """The call that cancels the job `poll` watches, where the provider has one; None otherwise.

        Override for providers with a cancel URL.
        """
        return None

    # --- request hooks -------------------------------------------------------------------------

    def _route(self, inp: TaskInput) -> str:
        """Path (and query) after `/<provider>`. Always overridden."""
        raise NotImplementedError

    def _headers(self, inp: TaskInput) -> dict[str, str]:
        """Headers of the submit call and of polls, without Content-Type. Overridden to add provider headers."""
        # Python sends Accept: image/png on every image task call, whatever the provider (reference §2).
        return {"Accept": "image/png"} if self.task in IMAGE_TASKS else {}

    def _body(self, inp: TaskInput) -> tuple[bytes, str | None] | None:
        """A raw body and its media type (None: send no Content-Type), or None for a JSON body. Rarely overridden."""
        return None

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        """The JSON body. Overridden by every adapter that sends JSON."""
        raise NotImplementedError

    # --- reply hooks ---------------------------------------------------------------------------

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        """The submit reply. Overridden by job flows; one-shot flows read their output here."""
        return self._parse_output(inp, reply)

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        """A poll reply. Overridden by job flows."""
        raise ProviderReplyInvalid(f"{self.provider} {self.task}: unexpected poll reply")

    def _parse_result(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        """The result fetched after a job completed. Rarely overridden."""
        return self._parse_output(inp, reply)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        """The reply that holds the output (or its URL). Overridden by every adapter."""
        raise NotImplementedError

    def _parse_download(self, inp: TaskInput, reply: HttpReply) -> Step:
        """The downloaded file. Rarely overridden."""
        return downloaded_media(self.task, reply)

    # --- helpers for subclasses ----------------------------------------------------------------

    def _url(self, base_url: str, path: str) -> str:
        return f"{base_url.rstrip('/')}/{self.provider}{path}"

    def _decode(self, reply: HttpReply, type_: type[T]) -> T:
        """The reply body as a view struct; a shape mismatch names the provider, task and JSON path."""
        try:
            return msgspec.json.decode(reply.body, type=type_)
        except msgspec.DecodeError as exc:
            raise ProviderReplyInvalid(f"{self.provider} {self.task} reply: {exc}") from exc

    def _follow(
        self,
        inp: TaskInput,
        url: str,
        status: JobStatus,
        *,
        purpose: Purpose = "poll",
        queue_position: int | None = None,
    ) -> Pending:
        """A `Pending` GET of `url` with the submit call's headers (both clients reuse them when polling)."""
        headers = {**self._headers(inp), "Content-Type": "application/json"}
        call = HttpCall("GET", url, headers, purpose=purpose)
        interval = 0.0 if purpose == "result" else self.poll_interval_s
        return Pending(call, status, queue_position, interval)


def hf_params(inp: TaskInput) -> dict[str, Any]:
    """Generation parameters under the names huggingface_hub passes to providers; unset ones left out."""
    params = {
        "negative_prompt": inp.negative_prompt,
        "width": inp.width,
        "height": inp.height,
        "num_inference_steps": inp.steps,
        "guidance_scale": inp.guidance_scale,
        "num_frames": inp.num_frames,
        "seed": inp.seed,
    }
    return {key: value for key, value in params.items() if value is not None}


def size_to(params: dict[str, Any], key: str) -> dict[str, Any]:
    """`width` + `height` folded into `{key: {"width", "height"}}` (only when both are given)."""
    if "width" in params and "height" in params:
        params[key] = {"width": params.pop("width"), "height": params.pop("height")}
    return params


def with_options(params: dict[str, Any], inp: TaskInput) -> dict[str, Any]:
    """`params` with the request's provider-specific options laid over them."""
    return {**params, **inp.options}


def require(value: str | None, field: str, provider: str, task: str) -> str:
    """A text input the task cannot do without."""
    if value is None or value == "":
        raise UnsupportedInput(field, f"{provider} {task} needs a non-empty {field}")
    return value


class Chunk(msgspec.Struct):
    """A timed piece of a transcript: `{"text", "timestamp": [s, e]}` (HF, fal) or `{"text", "start", "end"}`."""

    text: str = ""
    timestamp: list[float | None] | None = None
    start: float | None = None
    end: float | None = None


def segments(chunks: list[Chunk] | None) -> list[tuple[float, float, str]]:
    """`(start, end, text)` per chunk that has a start; an open end (the last whisper chunk) becomes the start."""
    out: list[tuple[float, float, str]] = []
    for chunk in chunks or []:
        start, end = chunk.start, chunk.end
        if chunk.timestamp:
            start = chunk.timestamp[0]
            end = chunk.timestamp[1] if len(chunk.timestamp) > 1 else None
        if start is not None:
            out.append((start, end if end is not None else start, chunk.text.strip()))
    return out
