"""Virtual keys: what the gateway knows about each `Authorization: Bearer hfb-...` key, kept in a NATS KV bucket.

The key itself is shown once, when created, and never stored: the bucket holds its sha256, so a copy of the
bucket (a backup, a replica, a person with read access) lets nobody in.

    k.<sha256 hex>   the KeyRecord, found straight from a presented key; revoked records stay, marked
    n.<name>         the sha256 of the live key with that name: creating it is a compare-and-set, so two
                     `keys create` for one name at once cannot both succeed; revoking deletes it (name reusable)

Records change only by compare-and-set on their revision, so a revoke and a `touch` racing it cannot undo each
other, and every retry loop ends at a deadline.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable

import anyio
import msgspec
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.bus.jetstream import open_key_value
from services.settings import Settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "hfb-"
_KEY_LENGTH = len(KEY_PREFIX) + 43  # secrets.token_urlsafe(32): 32 random bytes in 43 base64url characters
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_STALE_CLAIM_S = 30.0
"""A name claimed this long ago whose record never appeared belongs to a `create` that died between the two writes."""


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One virtual key as stored; never the key itself."""

    name: str
    id: str
    """A public handle (random, unrelated to the key) that names the key's counters and its spend."""
    key_hash: str
    """sha256 hex of the key."""
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    """None: no budget."""
    models: list[str] | None = None
    """Models the key may use; None: all."""
    created: int
    """Unix seconds."""
    last_used: int | None = None
    """Unix seconds, updated at most every few seconds (`KeyStore.touch`)."""
    revoked: bool = False

    def allows(self, model: str) -> bool:
        """Whether the key may use `model`; a routing suffix (`:fastest`, `:<provider>`) does not change the model."""
        return self.models is None or model in self.models or model.partition(":")[0] in self.models


class KeyStoreError(ValueError):
    """`create` or `revoke` cannot do what was asked; the message says why and names no secret."""


class DuplicateKeyName(KeyStoreError):
    """A live key already has this name."""


class _NameClaim(msgspec.Struct, frozen=True):
    key_hash: str
    at: float


_Change = Callable[[KeyRecord], KeyRecord | None]
"""A record's new version, or None when there is nothing to change."""


def bucket_name(settings: Settings) -> str:
    """`HFBUS_KEYS` for the default prefix, `HFBUS_<PREFIX>_KEYS` otherwise, beside the prefix's streams."""
    return f"{settings.subjects.stream}_KEYS"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The virtual keys of one deployment (one prefix)."""

    def __init__(
        self, nc: NATS, kv: KeyValue, bucket: str, *, touch_every_s: float = 5.0, deadline_s: float = 5.0
    ) -> None:
        self._nc = nc
        self._kv = kv
        self._bucket = bucket
        self._touch_every_s = touch_every_s
        self._deadline_s = deadline_s
        self._touched: dict[str, float] = {}

    @classmethod
    async def open(cls, nc: NATS, settings: Settings, **options: float) -> KeyStore:
        """The store of `settings`' prefix; creates its bucket on first use."""
        bucket = bucket_name(settings)
        kv = await open_key_value(nc, bucket, replicas=settings.replicas, direct=True)
        return cls(nc, kv, bucket, **options)

    async def create(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        models: builtins.list[str] | None = None,
    ) -> str:
        """Make a key and return it; this is the only time it is seen.

        Raises:
            DuplicateKeyName: a live (unrevoked) key has this name.
            KeyStoreError: a bad name or limit.
        """
        _check(name, rpm=rpm, tpm=tpm, budget_usd=budget_usd, models=models)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            name=name,
            id=secrets.token_hex(8),
            key_hash=hash_key(key),
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            models=models,
            created=int(time.time()),
        )
        await self._claim_name(name, record.key_hash)
        await self._kv.create(_record_key(record.key_hash), msgspec.json.encode(record))
        return key

    async def lookup(self, key: str) -> KeyRecord | None:
        """The live record of a presented key; None for an unknown or revoked one.

        Found by the key's sha256, never by comparing keys: the time this takes depends on the hash, from which
        nothing about the key can be learnt, so timing reveals nothing an attacker could build on.

        Raises:
            nats.errors.Error: NATS did not answer (a 503 for the caller, not a 401).
        """
        if len(key) != _KEY_LENGTH or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        found = await self._get(digest)
        if found is None:
            return None
        record, _ = found
        if record.revoked or not hmac.compare_digest(record.key_hash, digest):
            return None
        return record

    async def revoke(self, name: str) -> bool:
        """Revoke the live key called `name`; False when there is none. Requests with it fail from now on."""
        claim = await self._claim(name)
        if claim is None:
            return False
        (key_hash, _), claim_revision = claim
        revoked = await self._change(
            key_hash, lambda r: None if r.revoked else msgspec.structs.replace(r, revoked=True)
        )
        try:
            # Only this claim: a new key may have taken the name since.
            await self._kv.delete(_name_key(name), last=claim_revision)
        except KeyWrongLastSequenceError:
            pass
        return revoked

    async def touch(self, record: KeyRecord) -> None:
        """Note that the key was used now. At most once every `touch_every_s` per key and process; never raises:
        a lost `last_used` must not fail a request."""
        now = time.monotonic()
        if now - self._touched.get(record.key_hash, -self._touch_every_s) < self._touch_every_s:
            return
        self._touched[record.key_hash] = now
        used = int(time.time())
        try:
            with anyio.fail_after(self._deadline_s):
                await self._change(
                    record.key_hash,
                    lambda r: (
                        None if r.revoked or (r.last_used or 0) >= used else msgspec.structs.replace(r, last_used=used)
                    ),
                    once=True,
                )
        except (TimeoutError, NatsError):
            logger.debug("could not record when key %s was last used", record.id)

    async def _claim_name(self, name: str, key_hash: str) -> None:
        value = msgspec.json.encode(_NameClaim(key_hash=key_hash, at=time.time()))
        claim = await self._claim(name)
        try:
            if claim is None:
                await self._kv.create(_name_key(name), value)
                return
            (held_by, at), revision = claim
            found = await self._get(held_by)
            if found is not None and not found[0].revoked:
                raise DuplicateKeyName(f"a key named {name!r} exists; revoke it first (hfbus keys revoke {name})")
            if found is None and time.time() - at < _STALE_CLAIM_S:
                raise DuplicateKeyName(f"another key named {name!r} is being created at this moment")
            # The name's key was revoked, or its `create` died before writing the record: the name is free.
            await self._kv.update(_name_key(name), value, last=revision)
        except KeyWrongLastSequenceError:
            raise DuplicateKeyName(f"another key named {name!r} is being created at this moment") from None

    async def _claim(self, name: str) -> tuple[tuple[str, float], int] | None:
        """The name's claim (key hash, when) and its revision; None when the name is free."""
        try:
            entry = await self._kv.get(_name_key(name))
        except KeyNotFoundError:
            return None
        claim = msgspec.json.decode(entry.value or b"", type=_NameClaim)
        return (claim.key_hash, claim.at), entry.revision or 0

    async def _get(self, key_hash: str) -> tuple[KeyRecord, int] | None:
        try:
            entry = await self._kv.get(_record_key(key_hash))
        except KeyNotFoundError:
            return None
        return msgspec.json.decode(entry.value or b"", type=KeyRecord), entry.revision or 0

    async def _change(self, key_hash: str, change: _Change, *, once: bool = False) -> bool:
        """Apply `change` by compare-and-set, retried on conflict until the deadline (or tried once); False when
        there is no record, nothing to change, or (`once`) another writer came first.

        Raises:
            TimeoutError: other writers kept winning until the deadline.
        """
        deadline = time.monotonic() + self._deadline_s
        while True:
            found = await self._get(key_hash)
            if found is None:
                return False
            record, revision = found
            changed = change(record)
            if changed is None:
                return False
            try:
                await self._kv.update(_record_key(key_hash), msgspec.json.encode(changed), last=revision)
                return True
            except KeyWrongLastSequenceError:
                if once:
                    return False
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"key {record.name!r} kept changing for {self._deadline_s:g}s") from None
            await anyio.sleep(0.01 + secrets.randbelow(20) / 1000)  # jitter, so racing writers spread out

    async def list(self) -> builtins.list[KeyRecord]:
        """Every key record, revoked ones included, oldest first."""
        with anyio.fail_after(self._deadline_s):
            info = await self._nc.jsm().stream_info(f"KV_{self._bucket}", subjects_filter=f"$KV.{self._bucket}.k.>")
        records: builtins.list[KeyRecord] = []
        for subject in info.state.subjects or {}:
            found = await self._get(subject.rpartition(".")[2])
            if found is not None:
                records.append(found[0])
        return sorted(records, key=lambda r: (r.created, r.name))


def _record_key(key_hash: str) -> str:
    return f"k.{key_hash}"


def _name_key(name: str) -> str:
    # Names may hold dots, which KV keys read as token separators; base64url keeps one token.
    return "n." + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _check(
    name: str, *, rpm: int | None, tpm: int | None, budget_usd: float | None, models: builtins.list[str] | None
) -> None:
    if not _NAME.fullmatch(name):
        raise KeyStoreError(
            f"key name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-', starting alphanumeric"
        )
    for label, limit in (("rpm", rpm), ("tpm", tpm)):
        if limit is not None and limit < 1:
            raise KeyStoreError(f"{label} must be at least 1, got {limit}")
    if budget_usd is not None and not budget_usd >= 0:  # `not >=` also refuses NaN
        raise KeyStoreError(f"budget_usd must be 0 or more, got {budget_usd}")
    if models is not None and (not models or not all(m.strip() for m in models)):
        raise KeyStoreError("models must name at least one model, and no empty names")
