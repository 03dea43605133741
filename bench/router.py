"""`python -m bench.router --port P --pace S`: the project's fake router, alone in its own process.

A process of its own so the router does not share an event loop (or a core's time slice) with the load
generator or a consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from services.fake_router import FakeRouter, serve

TOKEN = "hf_bench"
_FORGET_EVERY_S = 1.0


async def _serve(port: int, pace_s: float, first_token_s: float) -> None:
    router = FakeRouter(token=TOKEN, pace_s=pace_s, first_token_s=first_token_s)
    runner, bound = await serve(router, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake router on http://127.0.0.1:{bound} pace={pace_s}s", flush=True)
    try:
        while not stop.is_set():
            # FakeRouter records every request for the tests' asserts; a bench sends hundreds of thousands,
            # so drop the record regularly to keep the router's memory (and GC work) flat.
            router.requests.clear()
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
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args.port, args.pace, args.first_token))
    else:
        uvloop.run(_serve(args.port, args.pace, args.first_token))


if __name__ == "__main__":
    main()
