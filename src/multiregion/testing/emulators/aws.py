"""moto as a server process on loopback, for the AWS adapters' tests and for users' own.

One ``MotoServer`` serves every AWS service; it keeps regions apart by the region a client
names, but a regional outage needs one server per region (stop that region's process).
"""

from __future__ import annotations

import sys

from multiregion.testing.emulators.process import LOOPBACK, EmulatorProcess

CREDENTIALS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Dummy credentials for boto3's default chain, so that it never looks for real ones."""

MOTO_SERVER = "multiregion.testing.emulators.moto_server"


class MotoServer(EmulatorProcess):
    """``moto.server`` (moto[server] 5.2.5) in its own process on a free loopback port, with
    S3's ``If-Match: *`` on DeleteObject as S3 answers it (see ``moto_server``)."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(
            [sys.executable, "-m", MOTO_SERVER, "-H", LOOPBACK, "-p", "{port}"],
            port=port,
            env=CREDENTIALS_ENV,
        )
