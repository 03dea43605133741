"""Fetching media from URLs the caller or a provider gave us, without becoming an SSRF proxy.

Only https, only public addresses — checked on the addresses the name actually resolves to (a resolver
that refuses private answers, so DNS rebinding cannot slip past a check done earlier) and again on every
redirect. Hosts in `HFBUS_MEDIA_ALLOW_HOSTS` are exempt: the offline router and tests serve media on
loopback over http.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.errors import InvalidRequest, TooLarge, UpstreamError, UpstreamUnavailable

MAX_REDIRECTS = 5


class UnsafeAddress(OSError):
    """The URL's host resolves to an address we never fetch from."""


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses loopback, private, link-local and metadata answers."""

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if host in self._allowed:
            return answers
        for answer in answers:
            if not is_public(answer["host"]):
                raise UnsafeAddress(f"{host} resolves to a non-public address")
        return answers

    async def close(self) -> None:
        await self._inner.close()


def check_url(url: str, allowed_hosts: frozenset[str], *, field: str) -> None:
    """Refuse anything but https (or an allowed host), and literal non-public IPs, before any connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in allowed_hosts:
        return
    if parts.scheme != "https":
        raise InvalidRequest(f"{field}: only https URLs are fetched, got {parts.scheme or 'no'} scheme")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    if not is_public(str(literal)):
        raise InvalidRequest(f"{field}: {host} is not a public address")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    field: str,
    headers: dict[str, Any] | None = None,
) -> tuple[bytes, str | None]:
    """GET a media URL (following redirects ourselves, checking each); return the bytes and their type."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allowed_hosts, field=field)
        try:
            async with session.get(url, allow_redirects=False, headers=headers) as response:
                if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status != 200:
                    raise UpstreamError(f"{field}: fetching the media URL answered HTTP {response.status}")
                if response.content_length is not None and response.content_length > max_bytes:
                    raise TooLarge(f"{field}: {response.content_length} bytes is over the {max_bytes}-byte media limit")
                body = bytearray()
                async for piece in response.content.iter_chunked(1 << 16):
                    body += piece
                    if len(body) > max_bytes:
                        raise TooLarge(f"{field}: media is over the {max_bytes}-byte limit")
                content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
                return bytes(body), content_type
        except UnsafeAddress as exc:
            raise InvalidRequest(f"{field}: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UnsafeAddress):
                raise InvalidRequest(f"{field}: {exc.os_error}") from None
            raise UpstreamUnavailable(f"{field}: could not connect to the media host ({type(exc).__name__})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(f"{field}: fetching the media failed ({type(exc).__name__})") from None
    raise InvalidRequest(f"{field}: more than {MAX_REDIRECTS} redirects")
