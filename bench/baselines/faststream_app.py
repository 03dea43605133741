"""The FastStream + huggingface_hub baseline: the consumer a team would write without hfbus.

Written the way the two libraries' docs suggest: a pydantic request model, a NATS subscriber in a queue group
with `max_workers` for concurrency, one shared `AsyncInferenceClient` pointed at the router's OpenAI-compatible
base URL, `chat_completion(stream=True)`, and one `broker.publish` of a dict per token to the reply subject.
Outputs mimic hfbus's shape (`{"type": "chunk"|"result"|"error", ...}`) so the load generator reads both alike.

Run: python -m bench.baselines.faststream_app --nats URL --router http://127.0.0.1:PORT --token T --workers N
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import anyio
from faststream import FastStream
from faststream.nats import NatsBroker, NatsMessage
from huggingface_hub import AsyncInferenceClient
from pydantic import BaseModel

SUBJECT = "ai.chat"
QUEUE = "faststream-workers"


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    id: str
    model: str
    messages: list[Message]
    max_tokens: int = 256


def build_app(nats_url: str, router_url: str, token: str, workers: int) -> FastStream:
    broker = NatsBroker(nats_url, name="faststream-baseline")
    client = AsyncInferenceClient(base_url=f"{router_url.rstrip('/')}/v1", api_key=token)

    # no_reply: outputs go out as a stream of publishes, not as the handler's return value.
    @broker.subscriber(SUBJECT, queue=QUEUE, max_workers=workers, no_reply=True)
    async def chat(request: ChatRequest, message: NatsMessage) -> None:
        reply = message.reply_to
        if not reply:
            return
        seq = 0
        final: dict[str, Any]
        try:
            stream = await client.chat_completion(
                messages=[m.model_dump() for m in request.messages],
                model=request.model,
                max_tokens=request.max_tokens,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and (text := chunk.choices[0].delta.content):
                    await broker.publish({"type": "chunk", "id": request.id, "seq": seq, "delta": text}, reply)
                    seq += 1
            usage = {"completion_tokens": seq}
            final = {"type": "result", "id": request.id, "seq": seq, "usage": usage}
        except Exception as exc:  # the bench counts it; a real app would log and map it
            final = {"type": "error", "id": request.id, "seq": seq, "message": f"{type(exc).__name__}: {exc}"}
        await broker.publish(final, reply)

    return FastStream(broker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats", required=True)
    parser.add_argument("--router", required=True, help="router base URL, without /v1")
    parser.add_argument("--token", default="hf_bench")
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_app(args.nats, args.router, args.token, args.workers)
    # What `faststream run` does: anyio with uvloop when it is installed.
    options: dict[str, Any] = {}
    try:
        import uvloop
    except ImportError:
        pass
    else:
        options["loop_factory"] = uvloop.new_event_loop
    print("faststream baseline starting", flush=True)
    anyio.run(app.run, logging.WARNING, backend_options=options)


if __name__ == "__main__":
    main()
