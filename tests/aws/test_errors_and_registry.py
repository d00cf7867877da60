"""The error mapping table and the provider's registration.

The adapters' own error paths run against moto in the other modules; moto cannot throttle or
deny, so the mapping of those codes is checked here on botocore's exception types directly.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from multiregion import registry
from multiregion.errors import (
    AuthError,
    MultiregionError,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)
from multiregion.providers.aws.errors import translate_error
from multiregion.providers.aws.s3 import S3Bucket
from multiregion.testing.emulators.aws import MotoServer
from tests.aws.conftest import FAST


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "secret-looking detail"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutItem",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ConditionalCheckFailedException", 400, PreconditionFailed),
        ("PreconditionFailed", 412, PreconditionFailed),
        ("ProvisionedThroughputExceededException", 400, Throttled),
        ("SlowDown", 503, Throttled),
        ("ThrottlingException", 400, Throttled),
        ("AccessDenied", 403, AuthError),
        ("UnrecognizedClientException", 400, AuthError),
        ("NoSuchKey", 404, NotFound),
        ("ResourceNotFoundException", 400, NotFound),
        ("InternalError", 500, Unavailable),
        ("SomethingNew", 400, MultiregionError),
    ],
)
def test_client_errors_map_to_the_library_tree(
    code: str, status: int, expected: type[MultiregionError]
) -> None:
    error = translate_error(_client_error(code, status), "PutItem")
    assert type(error) is expected
    assert code in str(error)
    assert "secret-looking" not in str(error)


def test_transport_and_credential_errors() -> None:
    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert isinstance(translate_error(refused, "GetItem"), Unavailable)
    assert isinstance(translate_error(NoCredentialsError(), "GetItem"), AuthError)


def test_the_provider_builds_every_part_by_name(moto: MotoServer) -> None:
    provider = registry.provider("aws")
    assert provider.extra == "aws"
    bucket = registry.bucket(
        "aws", bucket="registry-bucket", create=True, endpoint_url=moto.url, **FAST
    )
    assert isinstance(bucket, S3Bucket)
    assert "registry-bucket" in repr(bucket)
    for part in ("router", "store", "probe"):
        assert callable(provider.factory(part))


def test_importing_the_provider_imports_no_sdk() -> None:
    code = (
        "import sys, multiregion.providers.aws as p; "
        "assert p.provider.name == 'aws'; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
