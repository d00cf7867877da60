from __future__ import annotations

import pytest

from multiregion import InvalidInput, Unsupported, registry
from multiregion.registry import Provider


def test_known_providers_are_listed_without_importing_sdks() -> None:
    assert {"local", "aws", "azure", "gcp"} <= set(registry.available())


def test_unknown_provider_names_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        registry.provider("nimbus")
    assert info.value.field == "provider"
    assert "local" in str(info.value)


def test_missing_extra_becomes_an_install_hint() -> None:
    fake = Provider(name="fake", extra="fake", store="no_such_sdk_for_tests.store:Store")
    with pytest.raises(Unsupported, match=r"pip install 'multiregion\[fake\]'") as info:
        fake.factory("store")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_missing_part_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="has no router"):
        Provider(name="fake", extra=None).factory("router")
    with pytest.raises(InvalidInput) as info:
        Provider(name="fake", extra=None).factory("queue")
    assert info.value.field == "part"


def test_local_provider_builds_a_bucket(tmp_path) -> None:
    bucket = registry.bucket("local", path=str(tmp_path / "b"))
    info = bucket.put("k", b"v")
    assert bucket.get("k") == b"v"
    assert info.size == 1
