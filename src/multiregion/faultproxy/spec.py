"""A deployment's regions behind the fault proxy, and where a running proxy announces itself.

The proxy takes each region's place where users and health checks reach it: it listens on the
region's endpoint address and the health check's port, and forwards to the region's app, which
listens on the same address at ``app_port`` (by default the health check's port + 10000). One
listener per region, named after the region.

``multiregion faultproxy --config F`` announces its control API in ``state/`` next to the spec
(``state/faultproxy.<file stem>.json``), which ``multiregion drill`` reads; an announcement
whose proxy does not answer counts as none.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from multiregion import validate
from multiregion.deployment import DeploymentSpec
from multiregion.errors import InvalidInput, MultiregionError
from multiregion.faultproxy.client import ControlClient
from multiregion.faultproxy.listener import Address

APP_PORT_OFFSET = 10000


def _check_port(spec: DeploymentSpec) -> int:
    check = spec.route.health_check
    if check is None:
        raise InvalidInput(f"{spec.source}: health_check", "the proxy listens on its port")
    return check.port


def app_port(spec: DeploymentSpec, port: int | None = None) -> int:
    """Where each region's app listens behind the proxy."""
    if port is None:
        port = _check_port(spec) + APP_PORT_OFFSET
    return validate.int_range("app_port", port, 1, 65535)


def listeners(spec: DeploymentSpec, port: int | None = None) -> dict[str, tuple[Address, Address]]:
    """Region -> (where the proxy listens, where the region's app listens)."""
    front = _check_port(spec)
    back = app_port(spec, port)
    if back == front:
        raise InvalidInput(
            "app_port", f"{back} is the health check's port, where the proxy listens"
        )
    return {r.name: ((r.endpoint, front), (r.endpoint, back)) for r in spec.regions}


def app_address(spec: DeploymentSpec, region: str, port: int | None = None) -> Address:
    """Where ``region``'s app listens behind the proxy."""
    found = listeners(spec, port)
    if region not in found:
        raise InvalidInput("region", f"{region!r} is not one of {', '.join(found)}")
    return found[region][1]


def announcement(spec: DeploymentSpec) -> Path:
    source = Path(spec.source)
    return source.parent / "state" / f"faultproxy.{source.stem}.json"


def announce(spec: DeploymentSpec, url: str) -> Path:
    path = announcement(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"control": url}) + "\n", encoding="utf-8")
    return path


def withdraw(spec: DeploymentSpec) -> None:
    with contextlib.suppress(FileNotFoundError):
        announcement(spec).unlink()


def announced(spec: DeploymentSpec) -> ControlClient | None:
    """The control API of the proxy running for ``spec``, if one announced itself and answers."""
    try:
        url = json.loads(announcement(spec).read_text(encoding="utf-8"))["control"]
        client = ControlClient(url)
        client.listeners()
    except (OSError, ValueError, KeyError, TypeError, MultiregionError):
        return None
    return client
