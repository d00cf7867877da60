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

    def ensure(self, target: ProbeTarget) -> str:
        if not isinstance(target, ProbeTarget):
            raise InvalidInput("target", "must be a ProbeTarget")
        self._validate(target.check)
        self._scheduler.add(target.name, target)
        return target.name

    def status(self, name: str) -> EndpointHealth:
        return self._scheduler.health(self._name(name))

    def list(self) -> list[str]:
        return self._scheduler.keys()

    def delete(self, name: str) -> None:
        self._scheduler.remove(self._name(name))

    def expected_detection_s(self, check: HealthCheck) -> float:
        self._validate(check)
        return check.expected_detection_s()

    def close(self) -> None:
        self._scheduler.close()

    def _validate(self, check: object) -> None:
        if not isinstance(check, HealthCheck):
            raise InvalidInput("health_check", "must be a HealthCheck")
        caps = self.capabilities
        if check.protocol not in caps.protocols:
            raise InvalidInput("health_check.protocol", f"{check.protocol!r} is not supported")
        if check.interval_s < caps.min_interval_s:
            raise InvalidInput(
                "health_check.interval_s",
                f"{check.interval_s:g}s is below the minimum of {caps.min_interval_s:g}s",
            )

    @staticmethod
    def _name(name: object) -> str:
        if not isinstance(name, str):
            raise InvalidInput("name", "must be a string")
        return name
