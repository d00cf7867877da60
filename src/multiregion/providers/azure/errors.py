"""azure-core exceptions -> the library's error tree, with the original kept as ``__cause__``.

Messages name the operation, the HTTP status and Azure's error code; never request bodies,
keys or tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
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


def status_of(exc: AzureError) -> int:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else 0


def translate_error(exc: AzureError, operation: str) -> MultiregionError:
    """The library's error for ``exc``; the caller raises it ``from exc``.

    A 409 becomes ``AlreadyExists``: every call the adapters make that can answer 409 is a
    create-only write.
    """
    if isinstance(exc, ClientAuthenticationError):
        return AuthError(f"{operation}: Azure refused the credentials ({status_of(exc) or 'none'})")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Unavailable(f"{operation}: Azure endpoint did not answer ({type(exc).__name__})")
    if not isinstance(exc, HttpResponseError):
        return MultiregionError(f"{operation}: {type(exc).__name__}")
    status = status_of(exc)
    code = getattr(exc, "error_code", None) or ""
    detail = f"{status} {code}".strip()
    if status == 429:
        return Throttled(f"{operation}: throttled by Azure ({detail}) after retries")
    if status in (401, 403):
        return AuthError(f"{operation}: access denied ({detail})")
    if status == 404:
        return NotFound(f"{operation}: not found ({detail})")
    if status == 409:
        return AlreadyExists(f"{operation}: already exists ({detail})")
    if status == 412:
        return PreconditionFailed(f"{operation}: precondition failed ({detail})")
    if status >= 500 or status in (408, 503):
        return Unavailable(f"{operation}: Azure answered {detail}")
    return MultiregionError(f"{operation}: Azure error {detail}")


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any azure-core exception leaves as the library's error."""
    try:
        yield
    except AzureError as exc:
        raise translate_error(exc, operation) from exc
