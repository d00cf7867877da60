"""The health probe interface: checks on regional endpoints, run here or by the provider.

The public methods check their arguments and the capability flags before any I/O, then call
the adapter's hook of the same name with a leading underscore (``ensure`` calls ``_ensure``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

import attrs

from multiregion import validate
from multiregion.closing import Closing
from multiregion.errors import InvalidInput
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


class HealthProbe(Closing):
    """Health checks on regional endpoints, run by this process or by the provider.

    A check the capabilities exclude (its protocol, its interval) is refused with
    ``InvalidInput`` naming the field, before anything is created."""

    capabilities: ProbeCapabilities

    # ------------------------------------------------------------------ public methods

    def ensure(self, target: ProbeTarget) -> str:
        """Create the check for ``target`` or bring it up to date; returns the check's id."""
        validate.instance("target", target, ProbeTarget)
        self._supported(target.check)
        return self._ensure(target)

    def status(self, name: str) -> EndpointHealth:
        """The current verdict for the check named ``name``. Raises ``NotFound``."""
        return self._status(validate.endpoint_name("name", name))

    def list(self) -> list[str]:
        """Names of the checks this probe manages, sorted."""
        return sorted(self._list())

    def delete(self, name: str) -> None:
        """Remove the check. Raises ``NotFound``."""
        self._delete(validate.endpoint_name("name", name))

    def expected_detection_s(self, check: HealthCheck) -> float:
        """Mean seconds from an outage until this provider's checks call the endpoint down."""
        validate.instance("health_check", check, HealthCheck)
        self._supported(check)
        return self._expected_detection_s(check)

    def close(self) -> None:
        """Stop probing and release connections."""

    def _supported(self, check: HealthCheck) -> None:
        """``InvalidInput`` for a protocol or an interval the capabilities exclude."""
        caps = self.capabilities
        if check.protocol not in caps.protocols:
            raise InvalidInput(
                "health_check.protocol",
                f"{check.protocol!r} is not one of {', '.join(sorted(caps.protocols))} here",
            )
        if caps.intervals_s is not None and check.interval_s not in caps.intervals_s:
            allowed = " or ".join(f"{v:g}" for v in caps.intervals_s)
            raise InvalidInput("health_check.interval_s", f"must be {allowed} seconds here")
        if check.interval_s < caps.min_interval_s:
            raise InvalidInput(
                "health_check.interval_s",
                f"{check.interval_s:g}s is below the minimum of {caps.min_interval_s:g}s",
            )

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _ensure(self, target: ProbeTarget) -> str:
        """Create or update the check for ``target`` and return its id. Checked already:
        ``target`` is a ProbeTarget (valid name, address and HealthCheck) whose protocol and
        interval the capabilities allow. Left to the hook: what else its service cannot run
        as asked (thresholds, timeouts, statuses), refused with ``InvalidInput`` naming the
        field before its first request."""

    @abc.abstractmethod
    def _status(self, name: str) -> EndpointHealth:
        """The verdict for the check named ``name`` (a valid endpoint name). ``NotFound``
        unless this probe manages such a check."""

    @abc.abstractmethod
    def _list(self) -> Iterable[str]:
        """Names of the checks this probe manages, in any order (the caller sorts them)."""

    @abc.abstractmethod
    def _delete(self, name: str) -> None:
        """Remove the check named ``name`` (a valid endpoint name). Raises ``NotFound``."""

    @abc.abstractmethod
    def _expected_detection_s(self, check: HealthCheck) -> float:
        """Mean seconds from an outage to a verdict of down, for ``check`` (a HealthCheck whose
        protocol and interval the capabilities allow), by the service's own rule."""
