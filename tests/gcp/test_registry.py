"""The gcp provider through the registry, and that importing it loads no Google SDK."""

from __future__ import annotations

import subprocess
import sys

from multiregion import registry
from multiregion.providers.gcp.clouddns import CloudDnsRouter
from multiregion.providers.gcp.firestore import FirestoreStore
from multiregion.providers.gcp.healthchecks import ComputeHealthProbe
from multiregion.providers.gcp.storage import GcsBucket


def test_every_part_is_registered() -> None:
    provider = registry.provider("gcp")
    assert provider.extra == "gcp"
    assert provider.factory("router") is CloudDnsRouter
    assert provider.factory("store") is FirestoreStore
    assert provider.factory("bucket") is GcsBucket
    assert provider.factory("probe") is ComputeHealthProbe


def test_importing_the_provider_imports_no_google_sdk() -> None:
    code = (
        "import sys, multiregion.providers.gcp\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google', 'googleapiclient'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
