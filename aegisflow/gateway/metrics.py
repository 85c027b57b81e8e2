"""Prometheus metrics of the gateway, in a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    decisions: Counter
    latency: Histogram
    append: Histogram
    pending: Gauge
    ledger_entries: Gauge
    refused: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            decisions=Counter(
                "aegisflow_decisions",
                "Actions decided, by decision and protocol",
                ["decision", "protocol"],
                registry=registry,
            ),
            latency=Histogram(
                "aegisflow_action_seconds",
                "Time to decide and durably record an action",
                buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
                registry=registry,
            ),
            append=Histogram(
                "aegisflow_ledger_append_seconds",
                "Time for one ledger entry to become durable (group commit included)",
                buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                registry=registry,
            ),
            pending=Gauge(
                "aegisflow_pending_approvals", "Approvals waiting for a human", registry=registry
            ),
            ledger_entries=Gauge(
                "aegisflow_ledger_entries", "Entries in the evidence ledger", registry=registry
            ),
            refused=Counter(
                "aegisflow_channel_refusals",
                "Approval requests refused on a channel (Slack), by channel and reason",
                ["channel", "reason"],
                registry=registry,
            ),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
