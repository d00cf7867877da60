"""A deployment's regions behind the fault proxy, and where a running proxy announces itself.

The proxy takes each region's place where users and health checks reach it: it listens on the
region's endpoint address and the health check's port, and forwards to the region's app, which
listens on the same address at ``app_port`` (by default the health check's port + 10000). One
listener per region, named after the region.

``multiregion faultproxy --config F`` announces its control API in ``state/`` next to the spec
(``state/faultproxy.<file stem>.json``), which ``multiregion drill`` reads; an announcement
whose proxy does not answer counts as none. With ``--emulators`` (a cloud spec) it also
announces where the spec's parts connect on this machine (``Emulation``), which ``emulated``
applies for every command and app that opens the spec.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiregion import validate
from multiregion.deployment import DeploymentSpec
from multiregion.errors import InvalidInput, MultiregionError
from multiregion.faultproxy.client import ControlClient
from multiregion.faultproxy.listener import Address

if TYPE_CHECKING:
    from multiregion.testing.emulators.clouds import Emulation

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
    """Where ``region``'s app listens behind the proxy (by default the announced port, if any)."""
    if port is None:
        emulation = emulation_of(spec)
        port = None if emulation is None else emulation.app_port
    found = listeners(spec, port)
    if region not in found:
        raise InvalidInput("region", f"{region!r} is not one of {', '.join(found)}")
    return found[region][1]


def announcement(spec: DeploymentSpec) -> Path:
    source = Path(spec.source)
    return source.parent / "state" / f"faultproxy.{source.stem}.json"


def announce(spec: DeploymentSpec, url: str, emulation: Emulation | None = None) -> Path:
    path = announcement(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"control": url}
    if emulation is not None:
        data["emulated"] = emulation.to_dict()
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    return path


def withdraw(spec: DeploymentSpec) -> None:
    with contextlib.suppress(FileNotFoundError):
        announcement(spec).unlink()


def _announced(spec: DeploymentSpec) -> tuple[ControlClient, dict[str, Any]] | None:
    try:
        data = json.loads(announcement(spec).read_text(encoding="utf-8"))
        client = ControlClient(data["control"])
        client.listeners()
    except (OSError, ValueError, KeyError, TypeError, MultiregionError):
        return None
    return client, data


def announced(spec: DeploymentSpec) -> ControlClient | None:
    """The control API of the proxy running for ``spec``, if one announced itself and answers."""
    found = _announced(spec)
    return None if found is None else found[0]


def emulation_of(spec: DeploymentSpec) -> Emulation | None:
    """Where ``spec``'s parts connect on this machine, if a running proxy announced emulators."""
    found = _announced(spec)
    if found is None or "emulated" not in found[1]:
        return None
    from multiregion.testing.emulators.clouds import Emulation

    return Emulation.from_dict(found[1]["emulated"])


def emulated(spec: DeploymentSpec) -> DeploymentSpec:
    """``spec`` connected to the emulators a running ``multiregion faultproxy --emulators``
    announced for it; ``spec`` itself when none did."""
    emulation = emulation_of(spec)
    if emulation is None:
        return spec
    from multiregion.testing.emulators.clouds import overlay

    return overlay(spec, emulation)
