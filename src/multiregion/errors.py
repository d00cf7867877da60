"""One exception tree for every provider.

Adapters translate their SDK's exceptions into these and keep the original as
``__cause__`` (``raise NotFound(...) from exc``); no SDK exception leaves an adapter.
"""

from __future__ import annotations

from multiregion import redact


class MultiregionError(Exception):
    """Base of every error the library raises; its text never shows a secret (``redact``)."""

    def __str__(self) -> str:
        return redact.text(super().__str__())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class InvalidInput(MultiregionError, ValueError):
    """An argument is wrong; raised before any remote call, naming the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(MultiregionError):
    """The route, item, object or check does not exist."""


class AlreadyExists(MultiregionError):
    """A create-only write found the key or object already there."""


class PreconditionFailed(MultiregionError):
    """A version, etag or fencing token no longer matches what is stored."""


class CorruptData(MultiregionError):
    """Stored bytes do not match their checksum, or a backup is incomplete."""


class Unsupported(MultiregionError):
    """The provider cannot do this; its capability flags say so up front."""


class Throttled(MultiregionError):
    """The provider kept refusing for rate reasons after the SDK's own retries."""


class Unavailable(MultiregionError):
    """A region or service did not answer."""


class AuthError(MultiregionError):
    """Credentials are missing, expired, or lack a permission."""
