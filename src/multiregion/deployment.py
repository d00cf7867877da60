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

Every error names the file, the table path and what is wrong (with the name probably meant,
for a near-miss), before anything is connected: ``multiregion validate --config F`` checks a
file, and ``deployment.schema.json`` in the package lets an editor check it as it is typed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from multiregion import redact, registry, specfile, validate
from multiregion.closing import Closing
from multiregion.errors import InvalidInput
from multiregion.interfaces import BackupBucket, HealthProbe, ReplicatedStore, TrafficRouter
from multiregion.model import (
    Endpoint,
    Failover,
    Geo,
    Latency,
    Policy,
    Route,
    Weighted,
)
from multiregion.specfile import Problem, SpecError

PARTS = specfile.PARTS
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
    journal_in: str = "file"
    """``file``, ``store`` or ``bucket``: where ``journal`` (a path, or a key) is kept."""


@attrs.frozen
class DeploymentSpec:
    """A validated spec; ``settings[part]`` are the keyword settings of that part's provider."""

    name: str
    source: str
    regions: tuple[Region, ...]
    route: Route
    objectives: Objectives
    providers: Mapping[str, str] = attrs.field(hash=False)
    settings: Mapping[str, Mapping[str, Any]] = attrs.field(hash=False, repr=redact.settings_repr)
    runbook: RunbookSpec | None = None

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def region_of(self, endpoint_name: str) -> str:
        return self.route.endpoint(endpoint_name).region


def _regions(tables: list[specfile.RegionTable]) -> tuple[tuple[Region, ...], list[Problem]]:
    if not tables:
        return (), [Problem("regions", "must list at least one region ([[regions]] tables)")]
    regions = tuple(
        Region(t.name, validate.target("endpoint", t.endpoint), t.endpoint_name or t.name)
        for t in tables
    )
    names = [r.name for r in regions]
    twice = sorted({n for n in names if names.count(n) > 1})
    return regions, [Problem("regions", f"region {n!r} appears twice") for n in twice]


def _policy(route: specfile.RouteTable, regions: tuple[Region, ...]) -> Policy:
    """The route's policy in endpoint names; InvalidInput fields are spec paths."""
    by_region = {r.name: r.endpoint_name for r in regions}

    def endpoint_for(region: object, key: str) -> str:
        if not isinstance(region, str) or region not in by_region:
            raise InvalidInput(key, f"{region!r} is not a region of this deployment")
        return by_region[region]

    if route.policy == "failover":
        order = route.order if route.order is not None else [r.name for r in regions]
        if len(order) < 2:
            raise InvalidInput("route.order", "must list at least two regions, primary first")
        names = [endpoint_for(region, "route.order") for region in order]
        return Failover(names[0], names[1:])
    if route.policy == "weighted":
        weights = route.weights if route.weights is not None else {r.name: 1 for r in regions}
        return Weighted({endpoint_for(k, "route.weights"): v for k, v in weights.items()})
    if route.policy == "latency":
        return Latency()
    if route.locations is None:
        raise InvalidInput("route.locations", "is missing")
    return Geo(
        {
            location: endpoint_for(region, f"route.locations.{location}")
            for location, region in route.locations.items()
        },
        default=endpoint_for(route.default, "route.default"),
    )


# Model fields (as Route and its policy name them) -> the spec's keys.
_SPEC_KEYS = (
    ("policy.", "route."),
    ("policy", "route.policy"),
    ("endpoint.", "regions."),
    ("endpoints", "regions"),
    ("health_check.", "health_check."),
)


def _spec_key(field: str) -> str:
    """An InvalidInput field from the model, as the spec's key (``policy.weights``: route...)."""
    if field.startswith(("route.", "regions", "health_check")):
        return field
    for model_prefix, spec_prefix in _SPEC_KEYS:
        if field.startswith(model_prefix):
            return spec_prefix + field[len(model_prefix) :]
    return f"route.{field}"


def _relative(value: str, base: Path | None) -> str:
    """A path from the spec, taken from the spec's folder when relative."""
    return value if base is None or Path(value).is_absolute() else str(base / value)


def _resolve_paths(settings: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    return {
        key: _relative(value, base) if key in PATH_SETTINGS and isinstance(value, str) else value
        for key, value in settings.items()
    }


def parse(
    data: Mapping[str, Any], *, source: str = "<dict>", base: Path | None = None
) -> DeploymentSpec:
    """Check a spec given as a dict; ``base`` is the folder relative paths are taken from.

    Every key of every table is checked (names, types, values) before anything is built; a
    ``SpecError`` lists every problem found, each with its table path."""
    tables, problems = specfile.read(data)
    if tables is None or problems:
        raise SpecError(source, problems)
    regions, problems = _regions(tables.regions)
    if problems:
        raise SpecError(source, problems)
    try:
        route = Route(
            name=tables.route.name,
            endpoints=[Endpoint(r.endpoint_name, r.name, r.endpoint) for r in regions],
            policy=_policy(tables.route, regions),
            ttl=tables.route.ttl,
            health_check=tables.health_check,
        )
    except InvalidInput as exc:
        raise SpecError(source, [Problem(_spec_key(exc.field), exc.problem)]) from None
    name = tables.deployment.name
    providers: dict[str, str] = {}
    settings: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        table = dict(getattr(tables, part))
        providers[part] = table.pop("provider", tables.deployment.provider)
        settings[part] = _resolve_paths(table, base)
    runbook = None
    if tables.runbook is not None:
        local = tables.store.get("provider", tables.deployment.provider) == "local"
        journal_in = tables.runbook.journal_in or ("file" if local else "bucket")
        journal = tables.runbook.journal or f"{name}.journal"
        runbook = RunbookSpec(
            file=_relative(tables.runbook.file, base),
            journal=_relative(journal, base) if journal_in == "file" else journal,
            journal_in=journal_in,
        )
    rto_s, rpo_s = tables.objectives.rto_s, tables.objectives.rpo_s
    objectives = Objectives(
        None if rto_s is None else float(rto_s), None if rpo_s is None else float(rpo_s)
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


class Deployment(Closing):
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
