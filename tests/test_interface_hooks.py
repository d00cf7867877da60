"""Input is checked in one place: the interfaces' public methods, never an adapter's.

Each interface's public methods validate and normalise their arguments, then call the
adapter's ``_hook`` of the same name (as octoDNS's ``apply`` calls each provider's
``_apply``). An adapter that overrides a public method would bypass those checks, or repeat
them its own way; this test names any that does.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from multiregion.interfaces import BackupBucket, HealthProbe, ReplicatedStore, TrafficRouter

ADAPTERS = {
    TrafficRouter: [
        "multiregion.providers.local.router:LocalRouter",
        "multiregion.providers.aws.route53:Route53Router",
        "multiregion.providers.azure.trafficmanager:TrafficManagerRouter",
        "multiregion.providers.gcp.clouddns:CloudDnsRouter",
    ],
    ReplicatedStore: [
        "multiregion.providers.local.store:LocalStore",
        "multiregion.providers.aws.dynamodb:DynamoStore",
        "multiregion.providers.azure.cosmos:CosmosStore",
        "multiregion.providers.gcp.firestore:FirestoreStore",
    ],
    BackupBucket: [
        "multiregion.providers.local.bucket:LocalBucket",
        "multiregion.providers.aws.s3:S3Bucket",
        "multiregion.providers.azure.blob:BlobBucket",
        "multiregion.providers.gcp.storage:GcsBucket",
    ],
    HealthProbe: [
        "multiregion.providers.local.probe:LocalProbe",
        "multiregion.providers.aws.healthchecks:Route53Probe",
        "multiregion.providers.azure.monitoring:TrafficManagerProbe",
        "multiregion.providers.gcp.healthchecks:ComputeHealthProbe",
    ],
}

HELD_BY_ADAPTERS = frozenset({"close", "regions", "write_region"})
"""Public members with no input to check, which each adapter implements itself."""


def _load(path: str) -> type:
    module, name = path.split(":")
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type)
    return found


def _public_methods(interface: type) -> set[str]:
    return {
        name
        for name, member in vars(interface).items()
        if not name.startswith("_") and callable(member) and name not in HELD_BY_ADAPTERS
    }


CASES = [
    pytest.param(interface, path, id=path.rsplit(":", 1)[1])
    for interface, paths in ADAPTERS.items()
    for path in paths
]


@pytest.mark.parametrize(("interface", "path"), CASES)
def test_adapter_leaves_public_methods_to_the_interface(interface: type, path: str) -> None:
    adapter = _load(path)
    assert issubclass(adapter, interface)
    overridden = sorted(
        name
        for name in _public_methods(interface)
        for klass in adapter.__mro__[: adapter.__mro__.index(interface)]
        if name in vars(klass)
    )
    assert not overridden, f"{adapter.__name__} overrides {overridden}: implement the _hooks"


@pytest.mark.parametrize("interface", list(ADAPTERS))
def test_public_methods_are_concrete_and_hooks_abstract(interface: type) -> None:
    """Every public method has a body in the interface (its checks); what an adapter must
    provide is a ``_hook``."""
    public = _public_methods(interface)
    assert public
    abstract = getattr(interface, "__abstractmethods__", frozenset())
    assert not (public & abstract), f"still abstract: {sorted(public & abstract)}"
    hooks = {name for name in abstract if name.startswith("_")}
    assert hooks, f"{interface.__name__} declares no hook"
    for name in hooks:
        assert inspect.isfunction(getattr(interface, name))
