"""Reading request bodies: JSON into a struct, with an OpenAI-shaped 400 that names the bad field."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import web

from services.gateway.errors import bad_request

T = TypeVar("T")


async def read_json(request: web.Request, type_: type[T]) -> T:
    """The body decoded as `type_`; a 400 naming the field (`param`) when it is not valid JSON of that shape."""
    body = await request.read()
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise bad_request(f"invalid request body: {exc}", param=field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def field_of(exc: msgspec.ValidationError) -> str | None:
    """The top-level field a msgspec error points at (`... - at `$.messages[0].role`` -> `messages`)."""
    _, found, path = str(exc).rpartition(" - at `$.")
    if not found:
        return None
    return path.rstrip("`").split("[", 1)[0].split(".", 1)[0] or None
