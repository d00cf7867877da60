"""Opening a deployment spec for one command, with the local DNS data plane it needs.

The local router's DNS server (its data plane) must outlive a command for clients to use it:
``multiregion serve`` runs one and announces where it listens in the router's state directory.
A command that needs DNS answers or health (``status``) uses the announced data plane when it
is still the one announced (its process runs and it answers with the announcement's nonce),
and otherwise serves one itself for the command's own duration. Commands that only
change routing state (``apply``, ``failover``, ``drain``...) write files and never start one.
A spec that sets ``serve`` in its ``[router]`` table decides for itself. Cloud routers have
no data plane of ours: the cloud's DNS is it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from dnslib import QTYPE, DNSError, DNSRecord

from multiregion.deployment import Deployment, DeploymentSpec, load
from multiregion.errors import MultiregionError
from multiregion.faultproxy.spec import emulated

LIVENESS_TIMEOUT_S = 0.5


def uses_local_router(spec: DeploymentSpec) -> bool:
    return spec.providers["router"] == "local"


def announced_data_plane(router_settings: Mapping[str, Any]) -> tuple[str, int] | None:
    """Where a data plane serving the local router's state directory answers, if one does.

    An announcement left behind by a killed data plane counts as none, even when another DNS
    server (or another state directory's data plane) listens on its port now: its process must
    still run and whatever answers must know the announcement's nonce.
    """
    from multiregion.providers.local.routing_state import Announcement, RoutingState

    state_dir = router_settings.get("state_dir")
    if not isinstance(state_dir, str) or not state_dir:
        return None  # the router itself will say what is wrong with its settings
    try:
        announced: Announcement | None = RoutingState(state_dir).announcement()
    except MultiregionError:
        return None
    if announced is None or not announced.nonce or not announced.process_alive():
        return None
    if _nonce_at(announced.host, announced.port) != announced.nonce:
        return None
    return announced.host, announced.port


def open_deployment(config: str | Path, *, needs_dns: bool) -> Deployment:
    """The deployment in ``config``, its local router (if any) set up as described above, on
    the emulators ``multiregion faultproxy --emulators`` runs for it, if it does."""
    spec = emulated(load(config))
    router = dict(spec.settings["router"])
    if not uses_local_router(spec) or "serve" in router:
        return Deployment(spec)
    announced = announced_data_plane(router)
    if announced is None:
        router["serve"] = needs_dns
    else:
        router["serve"] = False
        router.setdefault("dns_host", announced[0])
    return Deployment(attrs.evolve(spec, settings={**spec.settings, "router": router}))


def serves_itself(deployment: Deployment) -> bool:
    """True when this command started the local data plane it asks (nothing announced one)."""
    return bool(deployment.spec.settings["router"].get("serve", False)) and uses_local_router(
        deployment.spec
    )


def _nonce_at(host: str, port: int) -> str | None:
    """The nonce the DNS server at ``host:port`` answers with, if any (a connected socket:
    refusals are quick)."""
    from multiregion.providers.local.routing_state import NONCE_NAME

    question = DNSRecord.question(NONCE_NAME, "TXT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(LIVENESS_TIMEOUT_S)
            sock.connect((host, port))
            sock.send(question.pack())
            reply = DNSRecord.parse(sock.recv(65535))
    except (OSError, DNSError):
        return None
    if reply.header.id != question.header.id:
        return None
    texts = [rr.rdata for rr in reply.rr if rr.rtype == QTYPE.TXT]
    if len(texts) != 1 or len(texts[0].data) != 1:
        return None
    nonce: bytes = texts[0].data[0]
    return nonce.decode("ascii", "replace")
