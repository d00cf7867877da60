"""Google SDK exceptions -> the library's error tree, with the original kept as ``__cause__``.

Covers google-api-core (Cloud Storage, Firestore), google-auth, requests' connection errors and
google-api-python-client's ``HttpError`` (Cloud DNS, Compute). Messages name the operation and
the status, never request parameters or tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from google.api_core import exceptions as core
from google.auth import exceptions as auth
from google.resumable_media import DataCorruption, InvalidResponse
from googleapiclient.errors import HttpError

from multiregion.errors import (
    AlreadyExists,
    AuthError,
    CorruptData,
    MultiregionError,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)

SDK_ERRORS: tuple[type[BaseException], ...] = (
    core.GoogleAPIError,
    auth.GoogleAuthError,
    requests.RequestException,
    HttpError,
    DataCorruption,
    InvalidResponse,
    ConnectionError,
    TimeoutError,
)


def _by_status(status: int, operation: str, detail: str) -> MultiregionError:
    if status in (401, 403):
        return AuthError(f"{operation}: access denied ({status})")
    if status == 404:
        return NotFound(f"{operation}: not found")
    if status == 409:
        return AlreadyExists(f"{operation}: already exists")
    if status == 412:
        return PreconditionFailed(f"{operation}: precondition failed")
    if status == 429:
        return Throttled(f"{operation}: throttled after the SDK's retries")
    if status >= 500:
        return Unavailable(f"{operation}: Google answered {status}")
    return MultiregionError(f"{operation}: Google error {status} {detail}".rstrip())


def translate_error(exc: BaseException, operation: str) -> MultiregionError:
    """The library's error for ``exc``; the caller raises it ``from exc``."""
    if isinstance(exc, DataCorruption):
        return CorruptData(f"{operation}: the CRC32C of the bytes moved does not match GCS's")
    if isinstance(exc, InvalidResponse):
        return _by_status(int(getattr(exc.response, "status_code", 0) or 0), operation, "")
    if isinstance(exc, auth.DefaultCredentialsError | auth.RefreshError):
        return AuthError(f"{operation}: no usable Google credentials ({type(exc).__name__})")
    if isinstance(exc, core.FailedPrecondition | core.Aborted):
        return PreconditionFailed(f"{operation}: precondition failed ({type(exc).__name__})")
    if isinstance(exc, core.ResourceExhausted | core.TooManyRequests):
        return Throttled(f"{operation}: throttled after the SDK's retries")
    if isinstance(exc, core.Unauthenticated | core.PermissionDenied):
        return AuthError(f"{operation}: access denied ({type(exc).__name__})")
    if isinstance(exc, core.ServiceUnavailable | core.DeadlineExceeded | core.RetryError):
        return Unavailable(f"{operation}: service did not answer ({type(exc).__name__})")
    if isinstance(exc, core.GoogleAPICallError) and exc.code is not None:
        return _by_status(int(exc.code), operation, type(exc).__name__)
    if isinstance(exc, HttpError):
        return _by_status(int(exc.resp.status), operation, exc.reason or "")
    if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
        return Unavailable(f"{operation}: endpoint did not answer ({type(exc).__name__})")
    return MultiregionError(f"{operation}: {type(exc).__name__}")


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any Google SDK exception leaves as the library's error."""
    try:
        yield
    except SDK_ERRORS as exc:
        raise translate_error(exc, operation) from exc
