"""Run the shared hand-rolled anchor consumer (`lean_consumer.py`) with this venv, without copying it.

The anchor imports `common.run`, which only exists in the suite it came from; this shim provides it (uvloop or
asyncio, as the anchor's `--loop` asks) and then hands over to `lean_consumer.main()` with the same argv.
The anchor directory is `/work/shared/anchors` unless `BENCH_ANCHORS_DIR` says otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
import types
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

DEFAULT_DIR = "/work/shared/anchors"


def anchors_dir() -> Path:
    return Path(os.environ.get("BENCH_ANCHORS_DIR", DEFAULT_DIR))


def _run(main_factory: Callable[[], Coroutine[Any, Any, None]], loop: str) -> None:
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main_factory())
            return
    asyncio.run(main_factory())


def main() -> None:
    directory = anchors_dir()
    if not (directory / "lean_consumer.py").is_file():
        raise SystemExit(f"anchor consumer not found in {directory} (set BENCH_ANCHORS_DIR)")
    sys.path.insert(0, str(directory))
    common = types.ModuleType("common")
    common.run = _run  # type: ignore[attr-defined]
    sys.modules["common"] = common
    import lean_consumer  # type: ignore[import-not-found]

    lean_consumer.main()


if __name__ == "__main__":
    main()
