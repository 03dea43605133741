"""Dev-only dependencies of the baselines, installed into the running venv on first use."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

BASELINE_PACKAGES = ("faststream[nats]", "huggingface_hub")
_MODULES = ("faststream", "huggingface_hub", "pydantic")


def _missing() -> list[str]:
    importlib.invalidate_caches()
    return [name for name in _MODULES if importlib.util.find_spec(name) is None]


def ensure_baseline_deps(timeout_s: float = 300.0) -> str | None:
    """Install the FastStream baseline's packages if absent; None when ready, else why the row is unavailable."""
    if not _missing():
        return None
    print(f"bench: installing {' '.join(BASELINE_PACKAGES)} into {sys.prefix} (first run only)...", flush=True)
    try:
        done = subprocess.run(
            [*installer(), *BASELINE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"pip install timed out after {timeout_s:g}s (no network?)"
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return f"pip install failed: {lines[-1] if lines else done.returncode}"
    missing = _missing()
    return f"still missing after pip install: {', '.join(missing)}" if missing else None


def installer() -> list[str]:
    """pip in this venv; a venv made by `uv sync` (`make install`) has none, so then uv's pip (`.tools/bin/uv`)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "-q"]
    uv = Path(__file__).resolve().parent.parent / ".tools" / "bin" / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        return [sys.executable, "-m", "pip", "install", "-q"]  # fails, and says why
    return [found, "pip", "install", "-q", "--python", sys.executable]
