"""A small fault-injecting TCP proxy, in the spirit of Toxiproxy: see docs/faultproxy.md."""

from multiregion.faultproxy.client import ControlClient, Held
from multiregion.faultproxy.proxy import FaultProxy
from multiregion.faultproxy.toxics import (
    Bandwidth,
    Blackhole,
    Engage,
    HttpErrors,
    Latency,
    Refuse,
    ResetAfter,
    SlowClose,
    Toxic,
)

__all__ = [
    "Bandwidth",
    "Blackhole",
    "ControlClient",
    "Engage",
    "FaultProxy",
    "Held",
    "HttpErrors",
    "Latency",
    "Refuse",
    "ResetAfter",
    "SlowClose",
    "Toxic",
]
