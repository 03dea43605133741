"""The publisher side: `async with HfBus.connect(url) as bus: async for event in bus.chat(messages): ...`.

`bus` connects and publishes a typed request per tag; `stream` follows one request's outputs.
"""

from services.client.bus import OUTPUTS, HfBus, media_input
from services.client.stream import (
    FINAL_RECHECK_S,
    BusTimeout,
    BusUnreachable,
    ChatStream,
    Mode,
    NoConsumer,
    RequestFailed,
    Stream,
)

__all__ = [
    "FINAL_RECHECK_S",
    "OUTPUTS",
    "BusTimeout",
    "BusUnreachable",
    "ChatStream",
    "HfBus",
    "Mode",
    "NoConsumer",
    "RequestFailed",
    "Stream",
    "media_input",
]
