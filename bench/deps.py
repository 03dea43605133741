"""Dev-only dependencies of the baselines, installed into the running venv on first use."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

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
            [sys.executable, "-m", "pip", "install", "-q", *BASELINE_PACKAGES],
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
