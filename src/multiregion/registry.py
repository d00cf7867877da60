"""Providers by name, found through the entry-point group ``multiregion.providers``.

A provider module is imported only when asked for, and its SDKs only when one of its parts is
built, so ``import multiregion`` costs nothing of any cloud. A missing SDK becomes an
``Unsupported`` naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

import attrs

from multiregion.errors import InvalidInput, Unsupported
from multiregion.interfaces import BackupBucket, HealthProbe, ReplicatedStore, TrafficRouter

GROUP = "multiregion.providers"

# Used when the package's metadata is not installed (a source checkout on sys.path).
_BUILTIN = {
    "local": "multiregion.providers.local:provider",
    "aws": "multiregion.providers.aws:provider",
    "azure": "multiregion.providers.azure:provider",
    "gcp": "multiregion.providers.gcp:provider",
}

Factory = Callable[..., Any]
PARTS = ("router", "store", "bucket", "probe")


@attrs.frozen
class Provider:
    """A provider's factories. Each takes the part's settings as keyword arguments.

    Factories are ``"module:function"`` strings so that building the provider imports nothing.
    """

    name: str
    extra: str | None
    router: str | None = None
    store: str | None = None
    bucket: str | None = None
    probe: str | None = None

    def factory(self, part: str) -> Factory:
        if part not in PARTS:
            raise InvalidInput("part", f"{part!r} is not one of {', '.join(PARTS)}")
        path = getattr(self, part)
        if path is None:
            raise Unsupported(f"provider {self.name!r} has no {part}")
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if self.extra is None or missing.split(".")[0] == "multiregion":
                raise
            hint = f"pip install 'multiregion[{self.extra}]'"
            raise Unsupported(f"provider {self.name!r} needs {missing!r}: {hint}") from exc
        factory: Factory = getattr(module, attr)
        return factory

    def build(self, part: str, settings: Mapping[str, Any] | None = None) -> Any:
        return self.factory(part)(**dict(settings or {}))


def _entry_points() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def available() -> list[str]:
    """Names of every known provider, whether or not its extra is installed."""
    return sorted(_entry_points())


def provider(name: str) -> Provider:
    """The provider registered as ``name``. Raises ``InvalidInput`` for an unknown one."""
    known = _entry_points()
    if name not in known:
        raise InvalidInput("provider", f"{name!r} is not one of {', '.join(sorted(known))}")
    module_name, _, attr = known[name].partition(":")
    found: Provider = getattr(importlib.import_module(module_name), attr or "provider")
    return found


def router(name: str, **settings: Any) -> TrafficRouter:
    built: TrafficRouter = provider(name).build("router", settings)
    return built


def store(name: str, **settings: Any) -> ReplicatedStore:
    built: ReplicatedStore = provider(name).build("store", settings)
    return built


def bucket(name: str, **settings: Any) -> BackupBucket:
    built: BackupBucket = provider(name).build("bucket", settings)
    return built


def probe(name: str, **settings: Any) -> HealthProbe:
    built: HealthProbe = provider(name).build("probe", settings)
    return built
