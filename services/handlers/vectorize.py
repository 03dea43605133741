"""`vectorize`: embeddings of one text or several, one vector per text in input order."""

from __future__ import annotations

from schemas.media import MediaUsage
from schemas.vectorize import VectorizeRequest, VectorizeResult
from services.catalog import cost_usd
from services.errors import Internal
from services.handlers._tasks import run
from services.handlers.seams import Context
from services.hf.providers import Vectors, dims_of

Request = VectorizeRequest


async def handle(request: VectorizeRequest, ctx: Context) -> None:
    texts = [request.input] if isinstance(request.input, str) else list(request.input)
    resolved, outcome = await run(
        ctx, request, "feature-extraction", texts=texts, normalize=request.normalize, truncate=request.truncate
    )
    if not isinstance(outcome.output, Vectors) or len(outcome.output.vectors) != len(texts):
        raise Internal("vectorize: the provider returned no vector per input text")
    vectors = outcome.output.vectors
    # Providers report no token count for embeddings: billed by characters is unknown, so estimate words.
    tokens = sum(len(text.split()) for text in texts)
    await ctx.result(
        VectorizeResult,
        vectors=vectors,
        dims=dims_of(vectors[0]) if vectors else 0,
        usage=MediaUsage(inputs=len(texts)),
        model=resolved.hf_model,
        provider=outcome.provider,
        router_request_id=outcome.router_request_id,
        cost_usd=cost_usd(resolved.entry, tokens=tokens),
    )
