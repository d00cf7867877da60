"""botocore exceptions -> the library's error tree, with the original kept as ``__cause__``.

Messages name the operation and AWS's error code, never request parameters or credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from multiregion.errors import (
    AlreadyExists,
    AuthError,
    MultiregionError,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)

THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
AUTH = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "InvalidToken",
    }
)
MISSING = frozenset(
    {
        "404",
        "NotFound",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchUpload",
        "ResourceNotFoundException",
        "NoSuchHostedZone",
        "NoSuchHealthCheck",
    }
)
PRECONDITION = frozenset(
    {"412", "PreconditionFailed", "ConditionalCheckFailedException", "ConditionalRequestConflict"}
)
EXISTING = frozenset({"HealthCheckAlreadyExists"})
UNAVAILABLE = frozenset(
    {"500", "502", "503", "504", "InternalError", "InternalServerError", "ServiceUnavailable"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate_error(exc: BotoCoreError | ClientError, operation: str) -> MultiregionError:
    """The library's error for ``exc``; the caller raises it ``from exc``."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthError(f"{operation}: no usable AWS credentials in the default chain")
    if isinstance(exc, BotoConnectionError | ReadTimeoutError):
        return Unavailable(f"{operation}: AWS endpoint did not answer ({type(exc).__name__})")
    if not isinstance(exc, ClientError):
        return MultiregionError(f"{operation}: {type(exc).__name__}")
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING or status == 429:
        return Throttled(f"{operation}: throttled by AWS ({code}) after retries")
    if code in AUTH or status == 403:
        return AuthError(f"{operation}: access denied ({code})")
    if code in MISSING or status == 404:
        return NotFound(f"{operation}: not found ({code})")
    if code in EXISTING:
        return AlreadyExists(f"{operation}: already exists ({code})")
    if code in PRECONDITION or status == 412:
        return PreconditionFailed(f"{operation}: precondition failed ({code})")
    if code in UNAVAILABLE or status >= 500:
        return Unavailable(f"{operation}: AWS answered {code or status}")
    return MultiregionError(f"{operation}: AWS error {code or status}")


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any botocore exception leaves as the library's error."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate_error(exc, operation) from exc
