"""`POST /v1/embeddings`: OpenAI's embeddings request onto `ai.vectorize`.

`encoding_format: base64` (what the Python SDK asks for by default) is each vector's little-endian float32 bytes
in base64, as OpenAI sends it; `float` gives the same float32 values as JSON numbers.
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

import msgspec
import orjson
from aiohttp import web

from schemas import Tag
from schemas.vectorize import VectorizeRequest, VectorizeResult
from services.gateway.errors import bad_request
from services.gateway.requests import read_json
from services.gateway.state import submit


class EmbeddingsBody(msgspec.Struct, kw_only=True):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, EmbeddingsBody)
    if body.dimensions is not None:
        raise bad_request("`dimensions` is not supported: the model decides the size", param="dimensions")
    texts = [body.input] if isinstance(body.input, str) else body.input
    result: VectorizeResult
    result, headers = await submit(
        request,
        Tag.VECTORIZE,
        VectorizeRequest,
        body.model,
        {"input": body.input},
        reserve_tokens=sum(len(text) for text in texts) // 4 + 1,  # about four characters a token
    )
    reply = _reply(result, body.model, body.encoding_format)
    return web.Response(body=orjson.dumps(reply), content_type="application/json", headers=headers)


def _reply(result: VectorizeResult, model: str, encoding: str) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding)}
        for index, vector in enumerate(result.vectors)
    ]
    # The providers behind the router do not report embedding tokens; OpenAI's fields are still required.
    return {
        "object": "list",
        "data": data,
        "model": result.model or model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    # OpenAI's embeddings are float32: both encodings carry the same float32 values, so a client switching
    # `encoding_format` gets identical vectors.
    packed = struct.pack(f"<{len(vector)}f", *vector)
    if encoding == "base64":
        return base64.b64encode(packed).decode()
    return list(struct.unpack(f"<{len(vector)}f", packed))
