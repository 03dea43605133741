"""`hfbus keys create|list|revoke`: the gateway's virtual keys."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from services.settings import Settings

if TYPE_CHECKING:
    from services.gateway.access.keys import KeyRecord

logger = logging.getLogger("hfbus")


def manage(args: argparse.Namespace, settings: Settings) -> None:
    from services.bus.connection import connect
    from services.gateway.access.keys import KeyStore, KeyStoreError
    from services.gateway.access.limits import Limiter, LimitsUnavailable

    # A person at a terminal wants one line on failure, not a warning per connection retry.
    logging.getLogger("services.bus.connection").setLevel(logging.ERROR)

    async def act() -> int:
        nc = await connect(settings, name="hfbus-keys")
        try:
            store = await KeyStore.open(nc, settings)
            if args.action == "create":
                models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models is not None else None
                key = await store.create(
                    args.name, rpm=args.rpm, tpm=args.tpm, budget_usd=args.budget_usd, models=models
                )
                described = (
                    f"rpm {_limit(args.rpm)}, tpm {_limit(args.tpm)}, budget {_limit(args.budget_usd)},"
                    f" models {','.join(models) if models else 'all'}"
                )
                sys.stderr.write(f"created key {args.name!r} ({described}); it is shown once, store it now:\n")
                sys.stdout.write(key + "\n")
            elif args.action == "revoke":
                if not await store.revoke(args.name):
                    sys.stderr.write(f"hfbus: no live key named {args.name!r}\n")
                    return 1
                sys.stderr.write(f"revoked key {args.name!r}\n")
            else:
                spend = (await Limiter(nc, settings, store).spend())["keys"]
                sys.stdout.write(_key_table(await store.list(), spend))
        finally:
            await nc.close()
        return 0

    try:
        status = anyio.run(act)
    except (KeyStoreError, LimitsUnavailable, PermissionError, ConnectionError, TimeoutError) as err:
        sys.stderr.write(f"hfbus: {err}\n")
        status = 1
    sys.exit(status)


def _key_table(records: Sequence[KeyRecord], spend: dict[str, Any]) -> str:
    """One line per key: never the key or its hash, which only `create` ever shows."""

    def when(unix: int | None) -> str:
        return "never" if unix is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(unix))

    rows = [("NAME", "STATE", "RPM", "TPM", "BUDGET", "SPENT", "REQUESTS", "TOKENS", "MODELS", "CREATED", "LAST USED")]
    for record in records:
        used = spend.get(record.id, {})
        rows.append(
            (
                record.name,
                "revoked" if record.revoked else "live",
                _limit(record.rpm),
                _limit(record.tpm),
                _limit(record.budget_usd),
                _usd(used.get("cost_usd", 0.0)),
                str(used.get("requests", 0)),
                str(used.get("tokens", 0)),
                ",".join(record.models) if record.models else "all",
                when(record.created),
                when(record.last_used),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def _limit(value: float | None) -> str:
    if value is None:
        return "unlimited"
    return f"${value:g}" if isinstance(value, float) else str(value)


def _usd(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"
