"""A deployment spec (TOML file or plain dict) and the parts it connects.

One file names the provider, the regions and their endpoints, the route, the health check, the
store, the bucket and the recovery objectives. Switching clouds is switching the provider name
and its settings; the rest of the spec, and the code using it, stays the same::

    [deployment]
    name = "shop"
    provider = "local"

    [[regions]]
    name = "region-a"
    endpoint = "127.0.0.2"

    [[regions]]
    name = "region-b"
    endpoint = "127.0.0.3"

    [route]
    name = "app.shop.test"
    policy = "failover"          # failover | weighted | latency | geo
    order = ["region-a", "region-b"]
    ttl = 5

    [health_check]
    protocol = "http"
    port = 8080
    path = "/health"
    interval_s = 1

    [store]                      # settings passed to the provider's store, as keywords
    path = "state/store"

Every error names the file, the key and what is wrong, before anything is connected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from multiregion import registry, validate
from multiregion.errors import InvalidInput
from multiregion.interfaces import BackupBucket, HealthProbe, ReplicatedStore, TrafficRouter
from multiregion.model import (
    Endpoint,
    Failover,
    Geo,
    HealthCheck,
    Latency,
    Policy,
    Route,
    Weighted,
)

PARTS = ("router", "store", "bucket", "probe")
POLICIES = frozenset({"failover", "weighted", "latency", "geo"})
# Settings that name files or directories; relative ones are taken from the spec's folder.
PATH_SETTINGS = frozenset({"path", "state_dir", "root"})


@attrs.frozen
class Objectives:
    """Recovery objectives the drills compare their measurements with."""

    rto_s: float | None = None
    rpo_s: float | None = None


@attrs.frozen
class Region:
    name: str
    endpoint: str
    endpoint_name: str


@attrs.frozen
class RunbookSpec:
    """A Python file whose ``build(deployment)`` returns the recovery Runbook, and its journal."""

    file: str
    journal: str


@attrs.frozen
class DeploymentSpec:
    """A validated spec; ``settings[part]`` are the keyword settings of that part's provider."""

    name: str
    source: str
    regions: tuple[Region, ...]
    route: Route
    objectives: Objectives
    providers: Mapping[str, str] = attrs.field(hash=False)
    settings: Mapping[str, Mapping[str, Any]] = attrs.field(hash=False)
    runbook: RunbookSpec | None = None

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def region_of(self, endpoint_name: str) -> str:
        return self.route.endpoint(endpoint_name).region


class _Reader:
    """Reads one spec, turning every problem into InvalidInput("<source>: <key>", ...)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{self.source}: {key}", problem)

    def table(self, data: Mapping[str, Any], key: str, *, required: bool) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                raise self.error(key, "is missing")
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a table")
        return dict(value)

    def text(
        self, data: Mapping[str, Any], key: str, where: str, default: str | None = None
    ) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(f"{where}.{key}", "must be a non-empty string")
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(f"{where}.{key}", f"{value!r} must be a number of seconds >= 0")
        return float(value)

    def translate(self, exc: InvalidInput, prefix: str) -> InvalidInput:
        """An InvalidInput from the model, renamed to the spec's key."""
        field = exc.field
        for model_prefix, spec_prefix in (
            ("policy.", "route."),
            ("policy", "route.policy"),
            ("endpoint.", "regions."),
            ("endpoints", "regions"),
            ("health_check.", "health_check."),
        ):
            if field.startswith(model_prefix):
                return self.error(spec_prefix + field[len(model_prefix) :], exc.problem)
        return self.error(f"{prefix}.{field}" if prefix else field, exc.problem)


def _policy(reader: _Reader, route: Mapping[str, Any], regions: tuple[Region, ...]) -> Policy:
    kind = route.get("policy", "failover")
    if not isinstance(kind, str) or kind not in POLICIES:
        raise reader.error("route.policy", f"{kind!r} is not one of {', '.join(sorted(POLICIES))}")
    by_region = {r.name: r.endpoint_name for r in regions}

    def endpoint_for(region: object, key: str) -> str:
        if not isinstance(region, str) or region not in by_region:
            raise reader.error(key, f"{region!r} is not a region of this deployment")
        return by_region[region]

    if kind == "failover":
        order = route.get("order", [r.name for r in regions])
        if not isinstance(order, list) or len(order) < 2:
            raise reader.error("route.order", "must list at least two regions, primary first")
        names = [endpoint_for(region, "route.order") for region in order]
        return Failover(names[0], names[1:])
    if kind == "weighted":
        weights = route.get("weights", {r.name: 1 for r in regions})
        if not isinstance(weights, Mapping):
            raise reader.error("route.weights", "must map regions to weights")
        return Weighted({endpoint_for(k, "route.weights"): v for k, v in weights.items()})
    if kind == "latency":
        return Latency()
    locations = reader.table(route, "locations", required=True)
    default = endpoint_for(route.get("default"), "route.default")
    return Geo(
        {loc: endpoint_for(region, f"route.locations.{loc}") for loc, region in locations.items()},
        default=default,
    )


def _regions(reader: _Reader, data: Mapping[str, Any]) -> tuple[Region, ...]:
    raw = data.get("regions")
    if not isinstance(raw, list) or not raw:
        raise reader.error("regions", "must list at least one region ([[regions]] tables)")
    regions = []
    for index, entry in enumerate(raw):
        where = f"regions[{index}]"
        if not isinstance(entry, Mapping):
            raise reader.error(where, "must be a table with name and endpoint")
        name = reader.text(entry, "name", where)
        try:
            validate.region(f"{where}.name", name)
            endpoint = validate.target(f"{where}.endpoint", reader.text(entry, "endpoint", where))
            endpoint_name = validate.endpoint_name(
                f"{where}.endpoint_name", entry.get("endpoint_name", name)
            )
        except InvalidInput as exc:
            raise reader.error(exc.field, exc.problem) from None
        regions.append(Region(name, endpoint, endpoint_name))
    seen = [r.name for r in regions]
    for name in seen:
        if seen.count(name) > 1:
            raise reader.error("regions", f"region {name!r} appears twice")
    return tuple(regions)


def _relative(value: str, base: Path | None) -> str:
    """A path from the spec, taken from the spec's folder when relative."""
    return value if base is None or Path(value).is_absolute() else str(base / value)


def _resolve_paths(settings: dict[str, Any], base: Path | None) -> dict[str, Any]:
    return {
        key: _relative(value, base) if key in PATH_SETTINGS and isinstance(value, str) else value
        for key, value in settings.items()
    }


def parse(
    data: Mapping[str, Any], *, source: str = "<dict>", base: Path | None = None
) -> DeploymentSpec:
    """Validate a spec given as a dict; ``base`` is the folder relative paths are taken from."""
    reader = _Reader(source)
    if not isinstance(data, Mapping):
        raise reader.error("", "a deployment spec must be a table")
    head = reader.table(data, "deployment", required=True)
    name = reader.text(head, "name", "deployment")
    default_provider = reader.text(head, "provider", "deployment", default="local")
    regions = _regions(reader, data)

    route_table = reader.table(data, "route", required=True)
    check_table = reader.table(data, "health_check", required=False)
    try:
        check = HealthCheck(**check_table) if check_table else None
    except TypeError as exc:
        raise reader.error("health_check", f"unknown setting ({exc})") from None
    except InvalidInput as exc:
        raise reader.translate(exc, "health_check") from None
    try:
        route = Route(
            name=route_table.get("name"),
            endpoints=[Endpoint(r.endpoint_name, r.name, r.endpoint) for r in regions],
            policy=_policy(reader, route_table, regions),
            ttl=route_table.get("ttl", 60),
            health_check=check,
        )
    except InvalidInput as exc:
        if exc.field.startswith(f"{source}: "):
            raise
        raise reader.translate(exc, "route") from None
    unknown = set(route_table) - {
        "name",
        "policy",
        "order",
        "weights",
        "locations",
        "default",
        "ttl",
    }
    if unknown:
        raise reader.error("route", f"unknown keys {', '.join(sorted(unknown))}")

    objectives_table = reader.table(data, "objectives", required=False)
    objectives = Objectives(
        rto_s=reader.number(objectives_table, "rto_s", "objectives"),
        rpo_s=reader.number(objectives_table, "rpo_s", "objectives"),
    )
    providers: dict[str, str] = {}
    settings: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        table = reader.table(data, part, required=False)
        provider = table.pop("provider", default_provider)
        if not isinstance(provider, str) or provider not in registry.available():
            known = ", ".join(registry.available())
            raise reader.error(f"{part}.provider", f"{provider!r} is not one of {known}")
        providers[part] = provider
        settings[part] = _resolve_paths(table, base)
    unknown = set(data) - {
        "deployment",
        "regions",
        "route",
        "health_check",
        "objectives",
        "runbook",
        *PARTS,
    }
    if unknown:
        raise reader.error("", f"unknown tables {', '.join(sorted(unknown))}")
    runbook = None
    runbook_table = reader.table(data, "runbook", required=False)
    if runbook_table:
        unknown = set(runbook_table) - {"file", "journal"}
        if unknown:
            raise reader.error("runbook", f"unknown keys {', '.join(sorted(unknown))}")
        journal = reader.text(runbook_table, "journal", "runbook", default=f"{name}.journal")
        runbook = RunbookSpec(
            file=_relative(reader.text(runbook_table, "file", "runbook"), base),
            journal=_relative(journal, base),
        )
    return DeploymentSpec(name, source, regions, route, objectives, providers, settings, runbook)


def load(path: str | Path) -> DeploymentSpec:
    """Read and validate a TOML spec."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(str(path), "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(str(path), f"not valid TOML: {exc}") from None
    return parse(data, source=str(path), base=path.parent)


class Deployment:
    """A spec with its parts connected on first use; ``close()`` releases them."""

    def __init__(self, spec: DeploymentSpec) -> None:
        self.spec = spec
        self._parts: dict[str, Any] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> Deployment:
        return cls(load(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: str | Path | None = None) -> Deployment:
        return cls(parse(data, base=Path(base) if base is not None else None))

    def _build(self, part: str, extra: Mapping[str, Any] | None = None) -> Any:
        if part not in self._parts:
            settings = dict(self.spec.settings[part])
            settings.update(extra or {})
            provider = registry.provider(self.spec.providers[part])
            try:
                self._parts[part] = provider.build(part, settings)
            except TypeError as exc:
                field = f"{self.spec.source}: {part}"
                raise InvalidInput(
                    field, f"settings not accepted by {provider.name}: {exc}"
                ) from None
        return self._parts[part]

    @property
    def router(self) -> TrafficRouter:
        router: TrafficRouter = self._build("router")
        return router

    @property
    def store(self) -> ReplicatedStore:
        settings = self.spec.settings["store"]
        extra = {} if "regions" in settings else {"regions": list(self.spec.region_names)}
        store: ReplicatedStore = self._build("store", extra)
        return store

    @property
    def bucket(self) -> BackupBucket:
        bucket: BackupBucket = self._build("bucket")
        return bucket

    @property
    def probe(self) -> HealthProbe:
        probe: HealthProbe = self._build("probe")
        return probe

    def close(self) -> None:
        parts, self._parts = self._parts, {}
        for part in parts.values():
            part.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
