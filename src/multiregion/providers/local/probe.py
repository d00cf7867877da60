"""The local HealthProbe: active probes run by this process on a ``ProbeScheduler``."""

from __future__ import annotations

import ssl

from multiregion.errors import InvalidInput
from multiregion.interfaces import HealthProbe, ProbeCapabilities
from multiregion.model import EndpointHealth, HealthCheck, ProbeTarget
from multiregion.probing import ProbeScheduler


class LocalProbe(HealthProbe):
    """Probes HTTP, HTTPS and TCP endpoints from this process; checks are named by target name.

    ``ssl_context`` decides which certificates HTTPS probes trust (default: the system's).
    Probing stops with ``close()`` or with the process: nothing is managed elsewhere.
    """

    capabilities = ProbeCapabilities(
        protocols=frozenset({"http", "https", "tcp"}),
        managed=False,
        intervals_s=None,
        min_interval_s=0.05,
    )

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise InvalidInput("ssl_context", "must be an ssl.SSLContext")
        self._scheduler = ProbeScheduler(ssl_context=ssl_context)

    def _ensure(self, target: ProbeTarget) -> str:
        self._scheduler.add(target.name, target)
        return target.name

    def _status(self, name: str) -> EndpointHealth:
        return self._scheduler.health(name)

    def _list(self) -> list[str]:
        return self._scheduler.keys()

    def _delete(self, name: str) -> None:
        self._scheduler.remove(name)

    def _expected_detection_s(self, check: HealthCheck) -> float:
        return check.expected_detection_s()

    def close(self) -> None:
        self._scheduler.close()
