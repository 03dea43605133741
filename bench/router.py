"""`python -m bench.router --port P --pace S`: the project's fake router, alone in its own process.

A process of its own so the router does not share an event loop (or a core's time slice) with the load
generator or a consumer. `GET /bench/counters` answers how many embedding (feature-extraction) calls it has
served so far, so the `vectorize` scenario can tell how many upstream calls a run made.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from services.dev.fake_router import FakeRouter, serve

TOKEN = "hf_bench"
_FORGET_EVERY_S = 1.0
COUNTERS_PATH = "/bench/counters"


def _is_embedding_call(path: str) -> bool:
    return path.endswith("/pipeline/feature-extraction") or path == "/together/v1/embeddings"


class _Counters:
    """Counts feature-extraction calls from the router's request record, just before the record is dropped."""

    def __init__(self, router: FakeRouter) -> None:
        self._router = router
        self.embed_calls = 0

    def forget(self) -> None:
        # FakeRouter records every request for the tests' asserts; a bench sends hundreds of thousands,
        # so drop the record regularly to keep the router's memory (and GC work) flat.
        self.embed_calls += sum(1 for r in self._router.requests if _is_embedding_call(r.path))
        self._router.requests.clear()

    async def handle(self, _: web.Request) -> web.Response:
        self.forget()
        return web.json_response({"embed_calls": self.embed_calls})


async def _serve(port: int, pace_s: float, first_token_s: float, embed_latency_s: float) -> None:
    router = FakeRouter(token=TOKEN, pace_s=pace_s, first_token_s=first_token_s)
    router.embed_latency_s = embed_latency_s
    counters = _Counters(router)
    router.app.router.add_get(COUNTERS_PATH, counters.handle)
    runner, bound = await serve(router, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake router on http://127.0.0.1:{bound} pace={pace_s}s embed_latency={embed_latency_s}s", flush=True)
    try:
        while not stop.is_set():
            counters.forget()
            try:
                await asyncio.wait_for(stop.wait(), _FORGET_EVERY_S)
            except TimeoutError:
                pass
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--first-token", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument(
        "--embed-latency", type=float, default=0.0, help="seconds each feature-extraction call waits, per call"
    )
    args = parser.parse_args()
    serving = _serve(args.port, args.pace, args.first_token, args.embed_latency)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serving)
    else:
        uvloop.run(serving)


if __name__ == "__main__":
    main()
