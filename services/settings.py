"""Settings read once from the environment into a frozen struct; secrets wrapped so they never print."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from schemas import Subjects, Tag
from services.reply_policy import ReplyPolicy, parse_patterns

Mode = Literal["core", "durable"]
_C = TypeVar("_C", bound=str)

STREAMING_TAGS = frozenset({Tag.CHAT, Tag.PIC2TEXT})
"""Tags whose requests wait on an upstream token stream: each in-flight one costs memory (about 25 KiB while it
waits, see the README), not CPU, so one process carries thousands."""
STREAMING_CONCURRENCY = 2048
"""Default per-process bound of a streaming tag: 1,000 concurrent streams with room to spare (a durable slot
stays taken until the ack is confirmed, after the final output went out)."""
HEAVY_CONCURRENCY = 64
"""Default per-process bound of every other tag: media downloads and uploads (up to 100 MiB each) and
embedding payloads cost memory and CPU per request."""


MIN_ADMIN_KEY_CHARS = 16
"""The console's sign-in key is guessable below this; `make run` generates 43 random characters."""


class Secret:
    """A credential that shows as `***` in every repr, str, log line and traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """An environment variable has a value hfbus cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """Optional NATS credentials and TLS files, passed to nats-py as they are."""

    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    creds_file: str | None = None
    nkey_seed_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a consumer process is configured with."""

    nats_url: str = "nats://127.0.0.1:4222"
    nats_auth: NatsAuth = field(default_factory=NatsAuth)
    hf_token: Secret | None = None
    router_url: str = "https://router.huggingface.co"
    hub_url: str = "https://huggingface.co"
    mode: Mode = "durable"
    prefix: str = "ai"
    http_addr: str = "127.0.0.1:9464"
    gateway_addr: str = "127.0.0.1:8080"
    """Where `hfbus gateway` serves the OpenAI-compatible API and the console (`/console`)."""
    admin_key: Secret | None = None
    """HFBUS_ADMIN_KEY: what signs in to the console and its admin API; None turns both off."""
    tags: tuple[Tag, ...] = ()
    """Tags this process serves; empty means every tag that has a handler."""
    concurrency: int | None = None
    """HFBUS_CONCURRENCY: requests one process runs at once for every tag, replacing the per-tag defaults."""
    tag_concurrency: tuple[tuple[Tag, int], ...] = ()
    """HFBUS_CONCURRENCY_<TAG> (e.g. HFBUS_CONCURRENCY_CHAT): one tag's bound; wins over HFBUS_CONCURRENCY."""
    max_request_bytes: int = 1024 * 1024
    max_messages: int = 512
    """Most chat messages one request may carry."""
    max_tokens: int = 65536
    """Largest `max_tokens` a chat request may ask for."""
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 60.0
    """How long an upstream may take to send its first token (queues, cold models)."""
    idle_timeout_s: float = 30.0
    """How long a started stream may stay silent before it counts as stalled."""
    request_timeout_s: float = 600.0
    """Upper bound for one non-streamed upstream call."""
    max_retries: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 20.0
    shutdown_grace_s: float = 30.0
    """Seconds in-flight requests get after SIGTERM; 0 hands durable requests back at once."""
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    replicas: int = 1
    """JetStream replicas of the work-queue stream (3 on a three-node cluster)."""
    dedupe_window_s: float = 120.0
    resumable: Literal["on-request", "always", "off"] = "on-request"
    """Which requests keep their outputs in `HFBUS_OUT` (HFBUS_RESUMABLE): those asking, every one, or none."""
    out_ttl_s: float = 600.0
    """How long `HFBUS_OUT` keeps each output (HFBUS_OUT_TTL)."""
    out_storage: Literal["memory", "file"] = "memory"
    """Where `HFBUS_OUT` keeps them (HFBUS_OUT_STORAGE): memory is cheaper per token, file survives restarts."""
    finals_ttl_s: float = 3600.0
    """How long durable mode keeps each request's final output for subscribers that missed it."""
    mapping_ttl_s: float = 600.0
    """How long a model's Hub provider mapping is trusted before it is fetched again."""
    cooldown_after: int = 3
    """Consecutive failures (after retries) that set a provider aside for `cooldown_s`."""
    cooldown_s: float = 30.0
    embed_batch_wait_s: float = 0.005
    """How long a vectorize request waits for others to share its upstream call (0 turns batching off)."""
    embed_batch_size: int = 64
    """Most texts one batched embeddings call carries."""
    job_timeout_s: float = 900.0
    """Overall deadline of a queued media job (submit, polls, result, download)."""
    max_media_bytes: int = 100 * 1024 * 1024
    inline_media_bytes: int = 256 * 1024
    """Media up to this size also travel inline in the result; larger ones only through the object store."""
    media_bucket: str = "hfbus-media"
    media_ttl_s: float = 24 * 3600.0
    media_allow_hosts: frozenset[str] = frozenset()
    """Hosts exempt from the https/public-address rule for media URLs (the offline router, tests)."""
    reply_subjects: tuple[str, ...] = ()
    """NATS wildcards a request's reply subject must match (HFBUS_REPLY_SUBJECTS); empty means the defaults."""
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    """One JSON object per line (the default, for log pipelines) or plain text."""

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.prefix)

    def concurrency_for(self, tag: Tag) -> int:
        """Requests of `tag` one process runs at once (its pull batch in durable mode too)."""
        for configured, value in self.tag_concurrency:
            if configured == tag:
                return value
        if self.concurrency is not None:
            return self.concurrency
        return STREAMING_CONCURRENCY if tag in STREAMING_TAGS else HEAVY_CONCURRENCY

    @property
    def reply_policy(self) -> ReplyPolicy:
        return ReplyPolicy.of(self.prefix, self.reply_subjects)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every `HFBUS_*`, `NATS_*` and HuggingFace variable; raise `SettingsError` naming a bad one."""
        env = os.environ if env is None else env
        defaults = cls()
        reader = _EnvReader(env)
        mode = reader.text("HFBUS_MODE", defaults.mode)
        if mode not in ("core", "durable"):
            raise SettingsError(f"HFBUS_MODE must be 'core' or 'durable', got {mode!r}")
        return cls(
            nats_url=reader.text("NATS_URL", defaults.nats_url),
            nats_auth=NatsAuth(
                user=env.get("NATS_USER") or None,
                password=reader.secret("NATS_PASSWORD"),
                token=reader.secret("NATS_TOKEN"),
                creds_file=env.get("NATS_CREDS") or None,
                nkey_seed_file=env.get("NATS_NKEY_SEED") or None,
                tls_ca=env.get("NATS_TLS_CA") or None,
                tls_cert=env.get("NATS_TLS_CERT") or None,
                tls_key=env.get("NATS_TLS_KEY") or None,
            ),
            hf_token=reader.hf_token(),
            router_url=reader.text("HF_ROUTER_URL", defaults.router_url).rstrip("/"),
            hub_url=reader.text("HF_HUB_URL", defaults.hub_url).rstrip("/"),
            mode="core" if mode == "core" else "durable",
            prefix=reader.text("HFBUS_PREFIX", defaults.prefix),
            http_addr=reader.text("HFBUS_HTTP_ADDR", defaults.http_addr),
            gateway_addr=reader.text("HFBUS_GATEWAY_ADDR", defaults.gateway_addr),
            admin_key=reader.admin_key("HFBUS_ADMIN_KEY"),
            tags=reader.tags("HFBUS_TAGS", defaults.tags),
            concurrency=reader.optional_integer("HFBUS_CONCURRENCY"),
            tag_concurrency=tuple(
                (tag, value)
                for tag in Tag
                if (value := reader.optional_integer(f"HFBUS_CONCURRENCY_{tag.value.upper()}")) is not None
            ),
            max_request_bytes=reader.integer("HFBUS_MAX_REQUEST_BYTES", defaults.max_request_bytes),
            max_messages=reader.integer("HFBUS_MAX_MESSAGES", defaults.max_messages),
            max_tokens=reader.integer("HFBUS_MAX_TOKENS", defaults.max_tokens),
            connect_timeout_s=reader.seconds("HFBUS_CONNECT_TIMEOUT", defaults.connect_timeout_s),
            first_token_timeout_s=reader.seconds("HFBUS_FIRST_TOKEN_TIMEOUT", defaults.first_token_timeout_s),
            idle_timeout_s=reader.seconds("HFBUS_IDLE_TIMEOUT", defaults.idle_timeout_s),
            request_timeout_s=reader.seconds("HFBUS_REQUEST_TIMEOUT", defaults.request_timeout_s),
            max_retries=reader.integer("HFBUS_MAX_RETRIES", defaults.max_retries, minimum=0),
            retry_base_s=reader.seconds("HFBUS_RETRY_BASE", defaults.retry_base_s),
            retry_max_s=reader.seconds("HFBUS_RETRY_MAX", defaults.retry_max_s),
            shutdown_grace_s=reader.seconds("HFBUS_SHUTDOWN_GRACE", defaults.shutdown_grace_s, allow_zero=True),
            ack_wait_s=reader.seconds("HFBUS_ACK_WAIT", defaults.ack_wait_s),
            max_deliver=reader.integer("HFBUS_MAX_DELIVER", defaults.max_deliver),
            replicas=reader.integer("HFBUS_REPLICAS", defaults.replicas),
            dedupe_window_s=reader.seconds("HFBUS_DEDUPE_WINDOW", defaults.dedupe_window_s),
            resumable=reader.choice("HFBUS_RESUMABLE", ("on-request", "always", "off"), defaults.resumable),
            out_ttl_s=reader.seconds("HFBUS_OUT_TTL", defaults.out_ttl_s),
            out_storage=reader.choice("HFBUS_OUT_STORAGE", ("memory", "file"), defaults.out_storage),
            finals_ttl_s=reader.seconds("HFBUS_FINALS_TTL", defaults.finals_ttl_s),
            mapping_ttl_s=reader.seconds("HFBUS_MAPPING_TTL", defaults.mapping_ttl_s),
            cooldown_after=reader.integer("HFBUS_COOLDOWN_AFTER", defaults.cooldown_after),
            cooldown_s=reader.seconds("HFBUS_COOLDOWN", defaults.cooldown_s),
            embed_batch_wait_s=reader.seconds("HFBUS_EMBED_BATCH_WAIT", defaults.embed_batch_wait_s, allow_zero=True),
            embed_batch_size=reader.integer("HFBUS_EMBED_BATCH_SIZE", defaults.embed_batch_size),
            job_timeout_s=reader.seconds("HFBUS_JOB_TIMEOUT", defaults.job_timeout_s),
            max_media_bytes=reader.integer("HFBUS_MAX_MEDIA_BYTES", defaults.max_media_bytes),
            inline_media_bytes=reader.integer("HFBUS_INLINE_MEDIA_BYTES", defaults.inline_media_bytes, minimum=0),
            media_bucket=reader.text("HFBUS_MEDIA_BUCKET", defaults.media_bucket),
            media_ttl_s=reader.seconds("HFBUS_MEDIA_TTL", defaults.media_ttl_s),
            media_allow_hosts=frozenset(
                h.strip() for h in env.get("HFBUS_MEDIA_ALLOW_HOSTS", "").split(",") if h.strip()
            ),
            reply_subjects=reader.reply_subjects("HFBUS_REPLY_SUBJECTS"),
            log_level=reader.text("HFBUS_LOG_LEVEL", defaults.log_level).upper(),
            log_format="text" if reader.text("HFBUS_LOG_FORMAT", defaults.log_format) == "text" else "json",
        )


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(name) or default

    def secret(self, name: str) -> Secret | None:
        value = self._env.get(name)
        return Secret(value) if value else None

    def choice(self, name: str, choices: tuple[_C, ...], default: _C) -> _C:
        """One of `choices` (as written in the environment, case-insensitive), or a `SettingsError` listing them."""
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        for choice in choices:
            if raw == choice:
                return choice
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")

    def admin_key(self, name: str) -> Secret | None:
        value = self._env.get(name, "").strip()
        if value and len(value) < MIN_ADMIN_KEY_CHARS:
            # Never echo it: a short value is still somebody's secret.
            raise SettingsError(f"{name} must be at least {MIN_ADMIN_KEY_CHARS} characters long")
        return Secret(value) if value else None

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        raw = self._env.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    def optional_integer(self, name: str) -> int | None:
        """A positive integer, or None when unset."""
        return self.integer(name, 0) or None

    def seconds(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        raw = self._env.get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise SettingsError(f"{name} must be positive, got {value}")
        return value

    def tags(self, name: str, default: tuple[Tag, ...]) -> tuple[Tag, ...]:
        raw = self._env.get(name)
        return parse_tags(raw) if raw else default

    def reply_subjects(self, name: str) -> tuple[str, ...]:
        raw = self._env.get(name)
        if not raw:
            return ()
        try:
            return parse_patterns(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}: {exc}") from None

    def hf_token(self) -> Secret | None:
        """HUGGINGFACE_API_KEY, then HF_TOKEN (huggingface_hub's name), then a secret file."""
        for name in ("HUGGINGFACE_API_KEY", "HF_TOKEN"):
            if value := self._env.get(name, "").strip():
                return Secret(value)
        for name in ("HUGGINGFACE_API_KEY_FILE", "HF_TOKEN_PATH"):
            if path := self._env.get(name):
                try:
                    value = Path(path).read_text().strip()
                except OSError as exc:
                    raise SettingsError(f"{name} points at a file that cannot be read: {exc.strerror}") from None
                if value:
                    return Secret(value)
        return None


def parse_tags(raw: str) -> tuple[Tag, ...]:
    """`chat,pic2text` -> tags; raise `SettingsError` naming an unknown one."""
    tags: list[Tag] = []
    for name in (part.strip() for part in raw.split(",")):
        if not name:
            continue
        try:
            tags.append(Tag(name))
        except ValueError:
            known = ", ".join(t.value for t in Tag)
            raise SettingsError(f"unknown tag {name!r}; known tags: {known}") from None
    if not tags:
        raise SettingsError("no tags given")
    return tuple(dict.fromkeys(tags))
