"""Client-side envelope encryption of backup objects (AES-256-GCM, ``cryptography`` package).

Each backup gets a fresh random data key; every object of the backup is sealed with it
(AES-GCM, a random 96-bit nonce per object, the object's key as associated data, so an object
moved under another name does not open). The data key itself is wrapped by a key-encryption key
that the caller holds (``EnvelopeKey``, or any ``KeyWrapper`` backed by a KMS) and the wrapped
form is kept in the manifest. The bytes a bucket stores are ciphertext on every provider, so a
cross-provider copy is encrypted end to end; the service-side keys of each adapter (SSE-KMS,
encryption scopes, CMEK) come on top of this, not instead of it.

Install with ``pip install multiregion[encryption]``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from multiregion.errors import CorruptData, InvalidInput

SCHEME = "aes-256-gcm"
NONCE_BYTES = 12
KEY_BYTES = 32


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InvalidInput(
            "encryption", "needs the cryptography package: pip install multiregion[encryption]"
        ) from exc
    return AESGCM(key)


def _seal(key: bytes, plain: bytes, context: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + bytes(_aesgcm(key).encrypt(nonce, plain, context))


def _open(key: bytes, sealed: bytes, context: bytes, what: str) -> bytes:
    from cryptography.exceptions import InvalidTag

    if len(sealed) < NONCE_BYTES + 16:
        raise CorruptData(f"{what}: too short to be AES-GCM ciphertext")
    try:
        return bytes(_aesgcm(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context))
    except InvalidTag as exc:
        raise CorruptData(f"{what}: does not decrypt (wrong key or damaged bytes)") from exc


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys: a local key (``EnvelopeKey``) or a KMS client."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


@attrs.frozen(repr=False)
class EnvelopeKey:
    """A 256-bit key-encryption key held by the caller, named by ``key_id`` in manifests.

    Its secret never appears in a repr, a manifest or an error message."""

    key_id: str
    secret: bytes = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not self.key_id or len(self.key_id) > 200:
            raise InvalidInput("key_id", "must be a non-empty name of at most 200 characters")
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise InvalidInput("secret", f"must be {KEY_BYTES} bytes (AES-256)")

    @classmethod
    def generate(cls, key_id: str) -> EnvelopeKey:
        return cls(key_id, os.urandom(KEY_BYTES))

    def __repr__(self) -> str:
        return f"EnvelopeKey(key_id={self.key_id!r})"

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        return _seal(self.secret, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return _open(self.secret, wrapped, context, f"data key wrapped by {self.key_id}")


KEY_ENV = "MULTIREGION_BACKUP_KEY"
"""``<key id>:<base64 of 32 bytes>``: the envelope key the commands use when it is set."""


def key_from_env(environ: Mapping[str, str] | None = None) -> EnvelopeKey | None:
    """The envelope key named by ``$MULTIREGION_BACKUP_KEY``, or None when it is not set.
    Errors name the variable, never its value."""
    text = (os.environ if environ is None else environ).get(KEY_ENV)
    if not text:
        return None
    key_id, colon, encoded = text.rpartition(":")
    try:
        secret = base64.b64decode(encoded, validate=True) if colon else b""
    except ValueError:
        secret = b""
    if not key_id or len(secret) != KEY_BYTES:
        raise InvalidInput(KEY_ENV, "must be '<key id>:<base64 of 32 random bytes>'")
    return EnvelopeKey(key_id, secret)


class DataKey:
    """One backup's data key: seals and opens that backup's objects."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "DataKey(<hidden>)"

    @classmethod
    def new(cls) -> DataKey:
        return cls(os.urandom(KEY_BYTES))

    def seal(self, object_key: str, plain: bytes) -> bytes:
        return _seal(self._key, plain, object_key.encode())

    def open(self, object_key: str, sealed: bytes) -> bytes:
        return _open(self._key, sealed, object_key.encode(), object_key)

    def describe(self, wrapper: KeyWrapper, backup_id: str) -> dict[str, str]:
        """What the manifest keeps: the scheme, the wrapping key's id and the wrapped key."""
        wrapped = wrapper.wrap(self._key, backup_id.encode())
        return {
            "scheme": SCHEME,
            "key_id": wrapper.key_id,
            "wrapped_key": base64.b64encode(wrapped).decode(),
        }

    @classmethod
    def recover(
        cls, described: dict[str, str], wrapper: KeyWrapper | None, backup_id: str
    ) -> DataKey:
        """The data key of a backup whose manifest says ``described``."""
        key_id = described.get("key_id", "?")
        if described.get("scheme") != SCHEME:
            raise CorruptData(f"backup {backup_id}: unknown encryption {described.get('scheme')!r}")
        if wrapper is None:
            raise InvalidInput(
                "encryption", f"backup {backup_id} is encrypted under key {key_id!r}: give that key"
            )
        if wrapper.key_id != key_id:
            raise InvalidInput(
                "encryption",
                f"backup {backup_id} is encrypted under key {key_id!r}, not {wrapper.key_id!r}",
            )
        try:
            wrapped = base64.b64decode(described["wrapped_key"], validate=True)
        except (KeyError, ValueError) as exc:
            raise CorruptData(f"backup {backup_id}: the wrapped data key is unreadable") from exc
        return cls(wrapper.unwrap(wrapped, backup_id.encode()))
