"""Metrics, health endpoints and structured logs for operators."""

from __future__ import annotations

from services.observability.http import HealthServer
from services.observability.logs import JsonFormatter, configure_logging, log_request
from services.observability.metrics import Metrics, RequestRecord

__all__ = ["HealthServer", "JsonFormatter", "Metrics", "RequestRecord", "configure_logging", "log_request"]
