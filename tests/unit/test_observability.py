"""Metrics, log formatting and logging setup, without sockets."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from services.observability import JsonFormatter, Metrics, RequestRecord, configure_logging, log_request
from services.observability.http import HealthServer, parse_addr
from services.observability.logs import TextFormatter
from services.observability.series import MAX_LABEL_CHARS

# Token-shaped but not the suite's HF_TOKEN: the secrecy hook in tests/conftest.py watches for that one.
FAKE_TOKEN = "hf_" + "Zq7" * 12


def record(**fields: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "request_id": "r1",
        "tag": "chat",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "provider": "cerebras",
        "outcome": "ok",
        "attempt": 1,
        "ttft_s": 0.3,
        "duration_s": 1.5,
    }
    values.update(fields)
    return RequestRecord(**values)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the rendered exposition, keyed by sample name and labels."""
    body, _ = metrics.render()
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


REQUEST_LABELS = {"tag": "chat", "model": "meta-llama/Llama-3.1-8B-Instruct", "provider": "cerebras", "outcome": "ok"}


# --- metrics


def test_started_and_finished_count_the_request_and_return_in_flight_to_zero() -> None:
    metrics = Metrics()
    metrics.started("chat")
    metrics.started("chat")
    assert sample(metrics, "hfbus_requests_in_flight", tag="chat") == 2
    assert sample(metrics, "hfbus_requests_started_total", tag="chat") == 2

    metrics.finished(record())
    metrics.finished(record(request_id="r2", outcome="timeout"))

    assert sample(metrics, "hfbus_requests_in_flight", tag="chat") == 0
    assert sample(metrics, "hfbus_requests_total", **REQUEST_LABELS) == 1
    assert sample(metrics, "hfbus_requests_total", **{**REQUEST_LABELS, "outcome": "timeout"}) == 1


def test_time_to_first_token_lands_in_the_right_buckets() -> None:
    metrics = Metrics()
    metrics.started("chat")
    metrics.finished(record(ttft_s=0.3))

    assert sample(metrics, "hfbus_time_to_first_token_seconds_bucket", tag="chat", le="0.25") == 0
    assert sample(metrics, "hfbus_time_to_first_token_seconds_bucket", tag="chat", le="0.5") == 1
    assert sample(metrics, "hfbus_time_to_first_token_seconds_bucket", tag="chat", le="+Inf") == 1
    assert sample(metrics, "hfbus_time_to_first_token_seconds_count", tag="chat") == 1
    assert sample(metrics, "hfbus_time_to_first_token_seconds_sum", tag="chat") == pytest.approx(0.3)


def test_request_duration_is_observed_per_outcome() -> None:
    metrics = Metrics()
    for outcome, duration in [("ok", 1.5), ("ok", 45.0), ("handed_back", 0.02)]:
        metrics.started("chat")
        metrics.finished(record(outcome=outcome, duration_s=duration))

    ok = {"tag": "chat", "outcome": "ok"}
    assert sample(metrics, "hfbus_request_duration_seconds_bucket", **ok, le="1.0") == 0
    assert sample(metrics, "hfbus_request_duration_seconds_bucket", **ok, le="2.5") == 1
    assert sample(metrics, "hfbus_request_duration_seconds_bucket", **ok, le="60.0") == 2
    assert sample(metrics, "hfbus_request_duration_seconds_count", **ok) == 2
    handed_back = {"tag": "chat", "outcome": "handed_back"}
    assert sample(metrics, "hfbus_request_duration_seconds_bucket", **handed_back, le="0.05") == 1


def test_buckets_reach_from_milliseconds_to_minutes() -> None:
    metrics = Metrics()
    metrics.started("chat")
    metrics.finished(record())
    found = samples(metrics)
    for name in ("hfbus_time_to_first_token_seconds_bucket", "hfbus_request_duration_seconds_bucket"):
        bounds = sorted(float(dict(labels)["le"]) for sample_name, labels in found if sample_name == name)
        assert bounds[0] <= 0.05
        assert 300 <= bounds[-2] < bounds[-1] == float("inf")


def test_a_request_without_output_observes_no_time_to_first_token() -> None:
    metrics = Metrics()
    metrics.started("chat")
    metrics.finished(record(ttft_s=None, outcome="rate_limited"))
    assert sample(metrics, "hfbus_time_to_first_token_seconds_count", tag="chat") is None
    assert sample(metrics, "hfbus_request_duration_seconds_count", tag="chat", outcome="rate_limited") == 1


def test_tokens_and_cost_add_up_per_tag_and_model() -> None:
    metrics = Metrics()
    for tokens_in, tokens_out, cost in [(10, 100, 0.001), (5, 50, 0.002), (7, 0, None)]:
        metrics.started("chat")
        metrics.finished(record(tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost))

    assert sample(metrics, "hfbus_tokens_total", tag="chat", direction="in") == 22
    assert sample(metrics, "hfbus_tokens_total", tag="chat", direction="out") == 150
    cost_usd = sample(metrics, "hfbus_cost_usd_total", tag="chat", model="meta-llama/Llama-3.1-8B-Instruct")
    assert cost_usd == pytest.approx(0.003)


def test_missing_model_and_provider_become_empty_labels() -> None:
    metrics = Metrics()
    metrics.started("embed")
    metrics.finished(record(tag="embed", model=None, provider=None, outcome="invalid_request"))
    labels = {"tag": "embed", "model": "", "provider": "", "outcome": "invalid_request"}
    assert sample(metrics, "hfbus_requests_total", **labels) == 1


def test_label_values_are_capped() -> None:
    metrics = Metrics()
    metrics.started("chat")
    metrics.finished(record(model="m" * 500))
    models = {dict(labels).get("model") for name, labels in samples(metrics) if name == "hfbus_requests_total"}
    assert models == {"m" * MAX_LABEL_CHARS}


def test_retries_and_fallbacks_are_counted_with_their_labels() -> None:
    metrics = Metrics()
    metrics.retried("rate_limited")
    metrics.retried("rate_limited")
    metrics.retried("upstream_unavailable")
    metrics.fell_back("text2image", "fal-ai", "replicate")

    assert sample(metrics, "hfbus_upstream_retries_total", reason="rate_limited") == 2
    assert sample(metrics, "hfbus_upstream_retries_total", reason="upstream_unavailable") == 1
    fallback = {"tag": "text2image", "from": "fal-ai", "to": "replicate"}
    assert sample(metrics, "hfbus_provider_fallbacks_total", **fallback) == 1


def test_render_uses_the_prometheus_content_type() -> None:
    body, content_type = Metrics().render()
    assert content_type == CONTENT_TYPE_LATEST
    assert content_type.startswith("text/plain")
    assert b"# TYPE hfbus_requests_total counter" in body


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.retried("timeout")
    assert first.registry is not second.registry
    assert sample(second, "hfbus_upstream_retries_total", reason="timeout") is None


# --- health server configuration


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9464", ("::1", 9464)),
        (":9464", (None, 9464)),
    ],
)
def test_http_addr_is_parsed_into_host_and_port(addr: str, expected: tuple[str | None, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize("addr", ["localhost", "host:", "host:http", "host:70000", "host:-1"])
def test_a_malformed_http_addr_is_refused_with_the_variable_name(addr: str) -> None:
    with pytest.raises(ValueError, match="HFBUS_HTTP_ADDR"):
        HealthServer(addr, Metrics(), lambda: (True, ""))


# --- log lines


def log_record(msg: str = "hello %s", args: tuple[Any, ...] = ("world",), **attrs: Any) -> logging.LogRecord:
    made = logging.LogRecord("services.consumer.runner", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(attrs)
    return made


def test_json_formatter_writes_one_json_line_with_the_extra_fields_on_top() -> None:
    line = JsonFormatter().format(log_record(hfbus={"id": "r1", "tag": "chat", "tokens_out": 3}))
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed == {
        "ts": parsed["ts"],
        "level": "INFO",
        "logger": "services.consumer.runner",
        "msg": "hello world",
        "id": "r1",
        "tag": "chat",
        "tokens_out": 3,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", parsed["ts"])


def test_extra_fields_cannot_replace_the_core_keys() -> None:
    parsed = orjson.loads(JsonFormatter().format(log_record(hfbus={"msg": "spoofed", "level": "DEBUG"})))
    assert parsed["msg"] == "hello world"
    assert parsed["level"] == "INFO"


def test_json_formatter_renders_an_exception_on_the_same_line() -> None:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        made = log_record(exc_info=sys.exc_info())
    line = JsonFormatter().format(made)
    assert "\n" not in line
    exc = orjson.loads(line)["exc"]
    assert exc.startswith("Traceback") and "ZeroDivisionError: boom" in exc


def test_json_formatter_turns_values_it_cannot_encode_into_text() -> None:
    parsed = orjson.loads(JsonFormatter().format(log_record(hfbus={"where": object(), "nested": {1: "one"}})))
    assert parsed["where"].startswith("<object object")
    assert parsed["nested"] == {"1": "one"}


def test_token_shaped_values_are_redacted_everywhere() -> None:
    try:
        raise RuntimeError(f"upstream said {FAKE_TOKEN}")
    except RuntimeError:
        made = log_record(
            "auth with %s failed",
            (FAKE_TOKEN,),
            hfbus={"header": f"Bearer {FAKE_TOKEN}", "nested": {"list": [FAKE_TOKEN]}},
            exc_info=sys.exc_info(),
        )
    line = JsonFormatter().format(made)
    assert FAKE_TOKEN not in line
    parsed = orjson.loads(line)
    assert parsed["msg"] == "auth with hf_*** failed"
    assert parsed["header"] == "Bearer hf_***"
    assert parsed["nested"] == {"list": ["hf_***"]}
    assert "RuntimeError: upstream said hf_***" in parsed["exc"]


@pytest.mark.parametrize("text", ["hf-inference", "hf_abc", "hf_hub_download"])
def test_words_that_are_not_token_shaped_are_kept(text: str) -> None:
    assert orjson.loads(JsonFormatter().format(log_record("%s", (text,))))["msg"] == text


def test_text_formatter_appends_the_extra_fields_and_redacts() -> None:
    text = TextFormatter().format(log_record("key %s", (FAKE_TOKEN,), hfbus={"id": "r1", "outcome": "ok"}))
    assert text.endswith("INFO services.consumer.runner: key hf_*** id=r1 outcome=ok")


def test_log_request_writes_one_line_with_every_request_field() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.requests")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        log_request(
            logger,
            record(
                ttft_s=0.2345, duration_s=1.5, tokens_in=10, tokens_out=20, cost_usd=0.01, router_request_id="b1cf5226"
            ),
        )
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    parsed = orjson.loads(lines[0])
    del parsed["ts"]
    assert parsed == {
        "level": "INFO",
        "logger": "tests.observability.requests",
        "msg": "request finished",
        "id": "r1",
        "tag": "chat",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "provider": "cerebras",
        "outcome": "ok",
        "attempt": 1,
        "ttft_ms": 234.5,
        "duration_ms": 1500.0,
        "tokens_in": 10,
        "tokens_out": 20,
        "cost_usd": 0.01,
        "router_request_id": "b1cf5226",
    }


# --- logging setup


@pytest.fixture
def restored_logging() -> Iterator[logging.Logger]:
    """The root logger as configure_logging leaves it, put back afterwards for the other tests."""
    root = logging.getLogger()
    access = logging.getLogger("aiohttp.access")
    handlers, level, access_level = root.handlers[:], root.level, access.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    access.setLevel(access_level)


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "hfbus", False)]


def test_configure_logging_is_idempotent(restored_logging: logging.Logger) -> None:
    root = restored_logging
    others = [h for h in root.handlers if h not in ours(root)]
    configure_logging("debug")
    configure_logging("WARNING")
    configure_logging("info", "text")

    assert len(ours(root)) == 1
    assert isinstance(ours(root)[0].formatter, TextFormatter)
    assert [h for h in root.handlers if h not in ours(root)] == others  # pytest's capture handlers stay
    assert root.level == logging.INFO
    assert logging.getLogger("aiohttp.access").level == logging.WARNING


def test_configured_logging_writes_json_lines_to_stderr(
    restored_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    logging.getLogger("services.test").debug("not shown")
    logging.getLogger("services.test").info("shown %d", 1)
    lines = capsys.readouterr().err.splitlines()
    assert [orjson.loads(line)["msg"] for line in lines] == ["shown 1"]


def test_configure_logging_refuses_an_unknown_level(restored_logging: logging.Logger) -> None:
    with pytest.raises(ValueError, match="HFBUS_LOG_LEVEL"):
        configure_logging("LOUD")
