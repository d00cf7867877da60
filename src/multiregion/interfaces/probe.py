"""The health probe interface: checks on regional endpoints, run here or by the provider."""

from __future__ import annotations

import abc

import attrs

from multiregion.model import EndpointHealth, HealthCheck, ProbeTarget


@attrs.frozen
class ProbeCapabilities:
    protocols: frozenset[str]
    managed: bool
    """Checks run in the provider's infrastructure and keep running without this process."""
    intervals_s: tuple[float, ...] | None = None
    """The only intervals allowed, or None for any."""
    min_interval_s: float = 0.0
    reports_status: bool = True
    """``status`` gives the checks' verdicts. False where the service keeps them elsewhere
    (Compute health checks on external endpoints report to Cloud Logging only): ``status``
    then answers UNKNOWN, and callers should not wait for a verdict."""


class HealthProbe(abc.ABC):
    """Health checks on regional endpoints, run by this process or by the provider."""

    capabilities: ProbeCapabilities

    @abc.abstractmethod
    def ensure(self, target: ProbeTarget) -> str:
        """Create the check for ``target`` or bring it up to date; returns the check's id."""

    @abc.abstractmethod
    def status(self, name: str) -> EndpointHealth:
        """The current verdict for the check named ``name``. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self) -> list[str]:
        """Names of the checks this probe manages, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the check. Raises ``NotFound``."""

    @abc.abstractmethod
    def expected_detection_s(self, check: HealthCheck) -> float:
        """Mean seconds from an outage until this provider's checks call the endpoint down."""

    def close(self) -> None:  # noqa: B027
        """Stop probing and release connections."""
