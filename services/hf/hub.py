"""The Hub's account API: which account the HuggingFace token belongs to (`GET /api/whoami-v2`)."""

from __future__ import annotations

import msgspec

from services.errors import UpstreamError
from services.hf.client import HfClient
from services.hf.providers import HttpCall


class _AccessToken(msgspec.Struct, rename="camel"):
    display_name: str | None = None
    role: str | None = None


class _Auth(msgspec.Struct, rename="camel"):
    access_token: _AccessToken | None = None


class _WhoAmI(msgspec.Struct, rename="camel"):
    name: str = ""
    type: str = ""
    fullname: str | None = None
    can_pay: bool | None = None
    auth: _Auth | None = None


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """What the console shows of the account; never the token."""

    name: str
    type: str
    fullname: str | None = None
    can_pay: bool | None = None
    token_name: str | None = None
    token_role: str | None = None


_decoder = msgspec.json.Decoder(_WhoAmI)


async def whoami(client: HfClient, hub_url: str) -> Account:
    """The token's account.

    Raises:
        services.errors.Unauthorized: the Hub refused the token (a 401 or 403).
        services.errors.ServiceError: any other failure (unreachable, 5xx, an unreadable answer).
    """
    reply = await client.send(HttpCall("GET", f"{hub_url}/api/whoami-v2", {}))
    try:
        found = _decoder.decode(reply.body)
    except msgspec.DecodeError as exc:
        raise UpstreamError(f"the Hub's whoami answer is unreadable: {exc}") from None
    token = found.auth.access_token if found.auth is not None else None
    return Account(
        name=found.name,
        type=found.type,
        fullname=found.fullname,
        can_pay=found.can_pay,
        token_name=token.display_name if token else None,
        token_role=token.role if token else None,
    )
