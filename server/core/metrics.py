"""Prometheus metrics, one registry per application (tests build many apps)."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """The counters the server exposes at ``/metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "yilian_http_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yilian_http_request_seconds", "HTTP request latency", ["method", "route"],
            registry=self.registry,
        )
        self.expired = Counter(
            "yilian_consultations_expired_total", "Consultation requests that expired",
            registry=self.registry,
        )
        self.gauges: dict[str, Gauge] = {}
        # Each (method, route, status)'s counter and histogram: ``labels()`` takes a lock and
        # checks its labels on every call (a fortieth of a busy request's CPU).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.event_loop = Gauge(
            "yilian_event_loop", "The event loop this process serves on (1 on its name)",
            ["loop"], registry=self.registry,
        )

    def gauge(self, name: str, doc: str) -> Gauge:
        """A named gauge other subsystems (signalling, DICOM) can set."""
        if name not in self.gauges:
            self.gauges[name] = Gauge(name, doc, registry=self.registry)
        return self.gauges[name]

    def note_event_loop(self) -> None:
        """Show the running loop's kind (``uvloop`` or ``asyncio``, settings.event_loop)."""
        self.event_loop.labels(type(asyncio.get_running_loop()).__module__.split(".")[0]).set(1)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)),
                        self.latency.labels(method, route))
            if len(self._children) < 4096:  # routes are templates: a few hundred in all
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
