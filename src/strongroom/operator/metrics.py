"""Prometheus metrics of the operator process (served on `--metrics-port`, see health.py).

Metrics live in prometheus-client's default registry so the process and platform collectors it
registers there (RSS, CPU, open fds, GC) come along for free. Labels never carry object names:
their number would grow with the cluster.
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram, Info

from strongroom import __version__

BUILD_INFO = Info("strongroom_operator_build", "Version of the running strongroom operator.")
BUILD_INFO.info({"version": __version__})

READY = Gauge(
    "strongroom_operator_ready",
    "1 when the last readiness evaluation (/readyz) passed, else 0.",
)

EVENT_LOOP_LAG = Histogram(
    "strongroom_event_loop_lag_seconds",
    "How late the event loop ran a timer that was due (sampled every 100 ms): the time one piece of work "
    "kept every other object waiting.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
