"""Routes, overrides and last-known health of the local router, kept on disk.

Layout under the state directory, so that another process (the DNS server, the CLI) sees
every change::

    routes/<name>.json     {"route": {...}, "overrides": {"endpoint": "down", ...}}
    health/<name>.json     {"endpoint": {"state": "healthy", ...}, ...}  (by the data plane)
    generation             a random token rewritten on every route or override change
    dataplane.json         {"host", "port", "pid", "started", "nonce"} while a data plane serves
    .lock                  serialises read-modify-write of route files between processes

Every file is written whole to a temporary name and moved into place with ``os.replace``,
so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from multiregion import validate
from multiregion.errors import CorruptData, InvalidInput, MultiregionError, Unavailable
from multiregion.model import (
    Endpoint,
    EndpointHealth,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    HealthState,
    Latency,
    Policy,
    Route,
    Weighted,
)

# --------------------------------------------------------------------------- serialisation


def route_to_dict(route: Route) -> dict[str, Any]:
    """A JSON-ready dict that ``route_from_dict`` turns back into an equal Route."""
    check = route.health_check
    return {
        "name": route.name,
        "ttl": route.ttl,
        "endpoints": [
            {"name": e.name, "region": e.region, "target": e.target} for e in route.endpoints
        ],
        "policy": _policy_to_dict(route.policy),
        "health_check": None if check is None else _check_to_dict(check),
    }


def route_from_dict(data: Mapping[str, Any]) -> Route:
    """The Route that ``data`` describes. Raises ``InvalidInput`` naming what is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidInput("route", "must be a JSON object")
    try:
        check = data.get("health_check")
        return Route(
            name=data["name"],
            endpoints=[
                Endpoint(name=e["name"], region=e["region"], target=e["target"])
                for e in data["endpoints"]
            ],
            policy=_policy_from_dict(data["policy"]),
            ttl=data.get("ttl", 60),
            health_check=None if check is None else _check_from_dict(check),
        )
    except KeyError as exc:
        raise InvalidInput("route", f"missing field {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise InvalidInput("route", f"malformed: {exc}") from None


def _policy_to_dict(policy: Policy) -> dict[str, Any]:
    if isinstance(policy, Failover):
        return {"type": "failover", "primary": policy.primary, "backups": list(policy.backups)}
    if isinstance(policy, Weighted):
        return {"type": "weighted", "weights": dict(policy.weights)}
    if isinstance(policy, Latency):
        return {"type": "latency"}
    return {"type": "geo", "locations": dict(policy.locations), "default": policy.default}


def _policy_from_dict(data: Mapping[str, Any]) -> Policy:
    kind = data["type"]
    if kind == "failover":
        return Failover(primary=data["primary"], backups=data["backups"])
    if kind == "weighted":
        return Weighted(weights=data["weights"])
    if kind == "latency":
        return Latency()
    if kind == "geo":
        return Geo(locations=data["locations"], default=data["default"])
    raise InvalidInput("policy.type", f"{kind!r} is not failover, weighted, latency or geo")


def _check_to_dict(check: HealthCheck) -> dict[str, Any]:
    data = attrs.asdict(check)
    data["expected_status"] = list(check.expected_status)
    return data


def _check_from_dict(data: Mapping[str, Any]) -> HealthCheck:
    fields = dict(data)
    if "expected_status" in fields:
        fields["expected_status"] = tuple(fields["expected_status"])
    return HealthCheck(**fields)


def health_to_dict(health: EndpointHealth) -> dict[str, Any]:
    data = attrs.asdict(health)
    data["state"] = health.state.value
    return data


def health_from_dict(data: Mapping[str, Any]) -> EndpointHealth:
    try:
        return EndpointHealth(**{**data, "state": HealthState(data["state"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("health", f"malformed: {exc}") from None


# --------------------------------------------------------------------------- announcements

NONCE_NAME = "nonce.data-plane.multiregion.invalid"
"""Asked (TXT) of an announced data plane: it answers with its announcement's nonce."""


def new_nonce() -> str:
    return secrets.token_hex(16)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name before ")" may hold spaces


@attrs.frozen
class Announcement:
    """Where a data plane listens, the process serving it, and the nonce it answers with.

    A data plane killed without a chance to withdraw leaves its announcement behind, and
    another DNS server may listen on that port since; ``process_alive`` and the nonce (asked
    over DNS by whoever wants to trust it) tell the two apart.
    """

    host: str
    port: int
    pid: int
    started: str | None
    nonce: str

    def process_alive(self) -> bool:
        """Whether the announcing process still runs (the same one: not a reused pid)."""
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
        except OSError:
            return False
        return self.started is None or process_start(self.pid) == self.started


# --------------------------------------------------------------------------- the directory


@attrs.frozen
class StoredRoute:
    route: Route
    overrides: Mapping[str, EndpointStatus] = attrs.field(factory=dict, hash=False)


class RoutingState:
    """The state directory: one route per file, readable and writable by several processes."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = validate.file_path("state_dir", state_dir)
        self._routes = self.root / "routes"
        self._health = self.root / "health"
        self._generation = self.root / "generation"
        self.dataplane_file = self.root / "dataplane.json"
        try:
            self._routes.mkdir(parents=True, exist_ok=True)
            self._health.mkdir(exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create state directory {self.root}: {exc}") from exc

    # -- routes and overrides

    def names(self) -> list[str]:
        try:
            files = os.listdir(self._routes)
        except OSError as exc:
            raise Unavailable(f"cannot list {self._routes}: {exc}") from exc
        return sorted(f[: -len(".json")] for f in files if f.endswith(".json"))

    def load(self, name: str) -> StoredRoute | None:
        """The route and its overrides, or None when there is no such route."""
        data = _read_json(self._route_file(name))
        if data is None:
            return None
        try:
            route = route_from_dict(data["route"])
            overrides = {k: EndpointStatus(v) for k, v in data.get("overrides", {}).items()}
        except (MultiregionError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptData(f"{self._route_file(name)}: {exc}") from exc
        return StoredRoute(route, overrides)

    def load_all(self) -> dict[str, StoredRoute]:
        found = {}
        for name in self.names():
            stored = self.load(name)
            if stored is not None:  # deleted between listing and reading
                found[name] = stored
        return found

    def save(self, route: Route) -> None:
        """Store ``route``, keeping the overrides of endpoints it still has."""
        with self._locked():
            old = self.load(route.name)
            kept = {} if old is None else dict(old.overrides)
            names = {e.name for e in route.endpoints}
            self._write(StoredRoute(route, {k: v for k, v in kept.items() if k in names}))

    def set_override(self, name: str, endpoint: str, status: EndpointStatus) -> bool:
        """Record an override; False when the route does not exist. AUTO removes the entry."""
        with self._locked():
            stored = self.load(name)
            if stored is None:
                return False
            stored.route.endpoint(endpoint)  # InvalidInput for an endpoint the route lacks
            overrides = dict(stored.overrides)
            overrides.pop(endpoint, None)
            if status is not EndpointStatus.AUTO:
                overrides[endpoint] = status
            self._write(StoredRoute(stored.route, overrides))
            return True

    def delete(self, name: str) -> bool:
        """Remove the route, its overrides and its health; False when it did not exist."""
        with self._locked():
            try:
                os.unlink(self._route_file(name))
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise Unavailable(f"cannot delete route {name}: {exc}") from exc
            with contextlib.suppress(OSError):
                os.unlink(self._health / f"{name}.json")
            self._bump()
            return True

    def generation(self) -> str:
        """A token that changes whenever a route or override changes."""
        try:
            return self._generation.read_text()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise Unavailable(f"cannot read {self._generation}: {exc}") from exc

    def generation_stamp(self) -> tuple[int, int, int] | None:
        """The generation file's identity: a cheap ``stat`` that changes with the token.

        Every change moves a new file into place, so its inode (and times) change; a reader
        that sees the same stamp twice may skip reading the token.
        """
        try:
            found = os.stat(self._generation)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"cannot stat {self._generation}: {exc}") from exc
        return found.st_ino, found.st_mtime_ns, found.st_ctime_ns

    # -- health, written by the data plane

    def write_health(self, name: str, health: Mapping[str, EndpointHealth]) -> None:
        if not self._route_file(name).exists():
            return  # the route was deleted: do not bring back a file for it
        _write_json(
            self._health / f"{name}.json", {k: health_to_dict(v) for k, v in health.items()}
        )

    def read_health(self, name: str) -> dict[str, EndpointHealth]:
        data = _read_json(self._health / f"{name}.json") or {}
        try:
            return {k: health_from_dict(v) for k, v in data.items()}
        except InvalidInput as exc:
            raise CorruptData(f"health of {name}: {exc}") from exc

    # -- where a data plane listens

    def advertise(self, host: str, port: int, nonce: str) -> Announcement:
        """Announce this process's data plane, which answers ``NONCE_NAME`` with ``nonce``."""
        announced = Announcement(host, port, os.getpid(), process_start(os.getpid()), nonce)
        _write_json(self.dataplane_file, attrs.asdict(announced))
        return announced

    def withdraw(self, nonce: str) -> None:
        """Remove the announcement, if it is still the one made with ``nonce``."""
        with contextlib.suppress(MultiregionError):
            announced = self.announcement()
            if announced is None or announced.nonce != nonce:
                return
        with contextlib.suppress(OSError):
            os.unlink(self.dataplane_file)

    def advertised(self) -> tuple[str, int] | None:
        """The host and port a data plane serving this directory announced, if any."""
        announced = self.announcement()
        return None if announced is None else (announced.host, announced.port)

    def announcement(self) -> Announcement | None:
        """What the data plane serving this directory announced, if any (perhaps stale)."""
        data = _read_json(self.dataplane_file)
        if data is None:
            return None
        try:
            return Announcement(
                str(data["host"]),
                int(data["port"]),
                int(data["pid"]),
                data.get("started"),
                str(data.get("nonce", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptData(f"{self.dataplane_file}: {exc}") from exc

    # -- internals

    def _route_file(self, name: str) -> Path:
        return self._routes / f"{validate.dns_name('name', name)}.json"

    def _write(self, stored: StoredRoute) -> None:
        _write_json(
            self._route_file(stored.route.name),
            {
                "route": route_to_dict(stored.route),
                "overrides": {k: v.value for k, v in sorted(stored.overrides.items())},
            },
        )
        self._bump()

    def _bump(self) -> None:
        _write_text(self._generation, uuid.uuid4().hex)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise Unavailable(f"cannot lock {self.root}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unavailable(f"cannot read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptData(f"{path} is not JSON: {exc}") from exc


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _write_text(path: Path, text: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise Unavailable(f"cannot write {path}: {exc}") from exc
