"""NATS micro discovery: `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` answered for every consumer process.

hfbus takes requests through its own intake (a queue group, or a JetStream pull consumer in durable mode),
so it answers the micro protocol (ADR-32) itself, with per-endpoint numbers from the runners' counters, rather
than letting `nats.micro` own the subscriptions. `nats micro ls|info|stats hfbus` then works in both modes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.nuid import NUID

from schemas import Subjects
from services.bus.defaults import LiveDefaults
from services.consumer.runner import TagRunner
from services.settings import Settings

SERVICE_NAME = "hfbus"
_VERBS = ("PING", "INFO", "STATS")


def new_instance_id() -> str:
    """A consumer process's `$SRV` id, also the `consumer` of its done events."""
    return NUID().next().decode()


class Discovery:
    """Answers the micro discovery verbs for one process; `start()` subscribes, `stop()` unsubscribes."""

    def __init__(
        self,
        nc: NATS,
        settings: Settings,
        version: str,
        runners: Mapping[str, TagRunner],
        *,
        instance_id: str | None = None,
        defaults: LiveDefaults | None = None,
    ) -> None:
        self._nc = nc
        self._settings = settings
        self._version = version
        self._runners = runners
        self._defaults = defaults
        self.id = instance_id or new_instance_id()
        self._started = datetime.now(UTC)
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        for verb in _VERBS:
            for subject in (f"$SRV.{verb}", f"$SRV.{verb}.{SERVICE_NAME}", f"$SRV.{verb}.{SERVICE_NAME}.{self.id}"):
                self._subscriptions.append(await self._nc.subscribe(subject, cb=self._answer))

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions.clear()

    async def _answer(self, msg: Msg) -> None:
        verb = msg.subject.split(".")[1]
        body = {"PING": self.ping, "INFO": self.info, "STATS": self.stats}[verb]()
        await msg.respond(orjson.dumps(body))

    def _identity(self, kind: str) -> dict[str, Any]:
        metadata = {"mode": self._settings.mode, "prefix": self._settings.prefix}
        if self._defaults is not None:
            # Micro metadata values are strings. The console waits on this to tell a strategy change took hold.
            metadata["defaults_revision"] = str(self._defaults.revision)
        return {
            "type": f"io.nats.micro.v1.{kind}_response",
            "name": SERVICE_NAME,
            "id": self.id,
            "version": self._version,
            "metadata": metadata,
        }

    def ping(self) -> dict[str, Any]:
        return self._identity("ping")

    def info(self) -> dict[str, Any]:
        return {
            **self._identity("info"),
            "description": "HuggingFace Inference Providers tasks over NATS",
            "endpoints": [self._endpoint(tag) for tag in self._runners],
        }

    def stats(self) -> dict[str, Any]:
        endpoints = []
        for tag, runner in self._runners.items():
            counters = runner.counters
            endpoints.append(
                {
                    **self._endpoint(tag),
                    "num_requests": counters.requests,
                    "num_errors": counters.errors,
                    "last_error": counters.last_error,
                    "processing_time": counters.processing_ns,
                    "average_processing_time": counters.processing_ns // counters.requests if counters.requests else 0,
                    "data": {
                        "redelivered": counters.redelivered,
                        "dead_lettered": counters.dead_lettered,
                        "in_flight": counters.in_flight,
                    },
                }
            )
        started = self._started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return {**self._identity("stats"), "started": started, "endpoints": endpoints}

    def _endpoint(self, tag: str) -> dict[str, Any]:
        subjects = self._settings.subjects
        runner = self._runners[tag]
        metadata: dict[str, str] = {"mode": self._settings.mode}
        if self._settings.mode == "durable":
            metadata |= {"stream": subjects.stream, "consumer": Subjects.durable(runner.tag)}
        return {
            "name": tag,
            "subject": subjects.request(runner.tag),
            "queue_group": Subjects.queue_group(runner.tag),
            "metadata": metadata,
        }
