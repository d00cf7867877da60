"""Checks shared by the value types and the adapters; each raises InvalidInput naming the field."""

from __future__ import annotations

import _json
import functools
import io
import ipaddress
import json
import math
import os
import re
import reprlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from multiregion.errors import InvalidInput

if TYPE_CHECKING:
    from multiregion.model import FencingToken

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62})$")

MAX_KEY_BYTES = 1024
MAX_TTL = 2**31 - 1
# Object metadata every bucket service can hold: S3 allows 2 KiB of user metadata in all,
# Azure only C#-identifier names (adapters encode the '-'), so names stay small and plain.
MAX_METADATA_BYTES = 1024
RESERVED_METADATA_PREFIX = "multiregion-"
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def dns_name(field: str, value: object) -> str:
    """A fully qualified DNS name, returned lowercase without the trailing dot."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    name = value.lower().rstrip(".")
    if len(name) > 253:
        raise InvalidInput(field, f"{shown(value)} is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidInput(field, f"{shown(value)} is not a fully qualified DNS name")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise InvalidInput(field, f"{shown(value)} has an invalid label {shown(label)}")
    return name


def region(field: str, value: object) -> str:
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidInput(
            field, f"{shown(value)} is not a region name (lowercase letters, digits, -)"
        )
    return value


def endpoint_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ENDPOINT.fullmatch(value):
        raise InvalidInput(
            field, f"{shown(value)} is not an endpoint name (1-63 of letters, digits, _ . -)"
        )
    return value


def target(field: str, value: object) -> str:
    """An IPv4 or IPv6 address, or a host name (served as CNAME)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be an IP address or a host name")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return dns_name(field, value)


def ttl(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL:
        raise InvalidInput(
            field, f"{shown(value)} is not a whole number of seconds from 0 to 2**31-1"
        )
    return value


def _number(field: str, value: int | float, what: str) -> float:
    """``value`` as a float; a whole number too large for one is refused, not an OverflowError."""
    try:
        number = float(value)
    except OverflowError:
        raise InvalidInput(field, f"{shown(value)} is too large {what}") from None
    if not math.isfinite(number):
        raise InvalidInput(field, f"{shown(value)} is not a finite number {what}")
    return number


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = 60
_SHOWN.maxother = 60
_SHOWN.maxlong = 40


def shown(value: object) -> str:
    """A short repr of ``value`` for an error message: never endless, never recursing deeply
    (a document nested 5,000 deep, a 10,000-digit number, a megabyte of text)."""
    return _SHOWN.repr(value)


def finite_non_negative(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, f"{shown(value)} is not a number")
    number = _number(field, value, "(must be finite and not negative)")
    if number < 0:
        raise InvalidInput(field, f"{shown(value)} must be finite and not negative")
    return number


def int_range(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field, f"{shown(value)} must be a whole number from {low} to {high}")
    return value


def seconds(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, f"{shown(value)} is not a number of seconds")
    number = _number(field, value, "for a number of seconds")
    if not low < number <= high:
        raise InvalidInput(
            field, f"{shown(value)} must be above {low:g} and at most {high:g} seconds"
        )
    return number


def key(field: str, value: object, max_bytes: int = MAX_KEY_BYTES, *, utf8: bool = False) -> str:
    """A store key or object key: non-empty text without control characters; with ``utf8``,
    also text that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidInput(field, "must not be empty")
    is_ascii = value.isascii()
    encodable = True
    if is_ascii:
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates: counted as UTF-8 would if it could
            size = len(value.encode("utf-8", "surrogatepass"))
            encodable = False
    if size > max_bytes:
        raise InvalidInput(field, f"is {size} bytes long; at most {max_bytes} are allowed")
    if not (is_ascii and value.isprintable()) and _CONTROL.search(value):  # printable ASCII: none
        raise InvalidInput(field, "must not contain control characters")
    if utf8 and not encodable:
        raise InvalidInput(field, _NOT_UTF8)
    return value


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NOT_UTF8 = "must be valid Unicode text (no lone surrogates)"


def utf8_text(field: str, value: str) -> str:
    """Text that UTF-8 can encode: no lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, _NOT_UTF8) from None
    return value


def prefix(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return value if not value else key(field, value)


def canonical_json(*, allow_nan: bool) -> Callable[[object], str]:
    """An encoder to compact JSON with sorted keys (ASCII), built once: ``json.dumps`` and
    ``JSONEncoder.encode`` build one on every call, which costs as much as encoding a small
    document. It does not look for cycles: a cycle raises RecursionError, which ``document``
    never meets, since it refuses anything nested too deep first."""
    encoder = _json.make_encoder(
        None, _unserialisable, _json.encode_basestring_ascii, None, ":", ",", True, False, allow_nan
    )

    def encode(value: object) -> str:
        return "".join(encoder(value, 0))

    return encode


def _unserialisable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_DOCUMENT_JSON = canonical_json(allow_nan=False)
_PARSE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""``json.loads`` without its checks for surrounding whitespace (set in ``__init__``, which
typeshed does not declare): for text encoded here, at half its cost."""


def document(field: str, value: object, max_bytes: int | None = None) -> dict[str, Any]:
    """A JSON object; returned as a deep copy so that later changes by the caller cannot leak in.

    With ``max_bytes``, also at most that many bytes as ``document_size`` counts them."""
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC's check is slow
        raise InvalidInput(field, f"must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = _DOCUMENT_JSON(value)
    except (TypeError, ValueError, RecursionError) as exc:
        depth(field, value)  # too deep (a cycle is) or too big is what the caller hears first
        raise InvalidInput(field, f"is not JSON-serialisable: {shown(str(exc))}") from None
    if text.count("{") + text.count("[") > MAX_DEPTH or len(text) > MAX_NODES:
        depth(field, value)  # else the text proves it: a container opens a bracket, a value
        # takes a character at least (brackets inside strings only make this cautious)
    copied: dict[str, Any] = _PARSE(text, 0)[0]
    if max_bytes is not None:
        size = len(text)  # document_size(copied): compact, sorted and (ASCII) one byte a char
        if size > max_bytes:
            raise InvalidInput(field, f"is {size} bytes as JSON; at most {max_bytes} allowed")
    return copied


MAX_DEPTH = 64
"""Deepest nesting of objects and lists in a document (DynamoDB holds 32, Cosmos DB 128)."""
MAX_NODES = 1_000_000
"""Most values in one document (a bound on the walk, far above what any service stores)."""
_LEAVES = frozenset({str, int, float, bool, type(None)})


def depth(field: str, value: object) -> None:
    """Refuses a document nested deeper than MAX_DEPTH or holding more than MAX_NODES values,
    walked a level at a time without recursion; only containers are kept for the next level."""
    level = 1
    seen = 1
    layer: list[object] = [value]
    while layer:
        below: list[object] = []
        for node in layer:
            children: Collection[object]
            if isinstance(node, Mapping):
                children = node.values()
            elif isinstance(node, list | tuple):
                children = node
            else:
                continue
            if level > MAX_DEPTH:
                raise InvalidInput(field, f"is nested more than {MAX_DEPTH} levels deep")
            seen += len(children)
            if seen > MAX_NODES:
                raise InvalidInput(field, f"holds more than {MAX_NODES} values")
            below += [child for child in children if type(child) not in _LEAVES]
        layer = below
        level += 1


def document_size(value: Mapping[str, Any]) -> int:
    """The size of a document as the library counts it: compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def version(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a version string returned by the store or bucket")
    return value


def if_version(value: object) -> str | None:
    """The ``if_version`` argument of a store write: None or a version string."""
    return None if value is None else version("if_version", value)


def fence(value: object) -> FencingToken | None:
    """The ``fence`` argument of a store write: None or a FencingToken."""
    if value is None:
        return None
    if not isinstance(value, _token_type()):
        raise InvalidInput("fence", "must be a FencingToken from promote() or fence()")
    return value


@functools.cache
def _token_type() -> type[FencingToken]:
    """``model.FencingToken``, imported on first use (``model`` imports this module)."""
    from multiregion.model import FencingToken

    return FencingToken


def store_conditions(wanted: object, token: object, create_only: object = False) -> None:
    """The conditions of a store write: ``if_version`` (``wanted``) None or a version, ``fence``
    (``token``) None or a FencingToken, ``create_only`` a bool not combined with ``if_version``."""
    if_version(wanted)
    fence(token)
    if not isinstance(create_only, bool):
        raise InvalidInput("create_only", "must be True or False")
    if create_only and wanted is not None:
        raise InvalidInput("if_version", "cannot be combined with create_only")


def write_conditions(create_only: object, if_match: object) -> None:
    """The conditions of a bucket write: ``create_only`` a bool, ``if_match`` None or a
    version, not both set."""
    if not isinstance(create_only, bool):
        raise InvalidInput("create_only", "must be True or False")
    if if_match is not None:
        version("if_match", if_match)
        if create_only:
            raise InvalidInput("if_match", "cannot be combined with create_only")


def pairs(items: object) -> Iterator[tuple[object, object]]:
    """The (key, value) pairs of a mapping or of an iterable of pairs, each checked as it comes."""
    if isinstance(items, Mapping):
        return iter(items.items())  # pairs, every one
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidInput("items", "must be a mapping or an iterable of (key, value) pairs")
    return _pairs(items)


def _pairs(found: Iterable[object]) -> Iterator[tuple[object, object]]:
    for index, pair in enumerate(found):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidInput(f"items[{index}]", "must be a (key, value) pair")
        yield pair


def data(value: object) -> bytes | IO[bytes]:
    """Bytes (copied) or a binary stream: anything with ``read()`` that is not a text stream."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, io.TextIOBase) or not callable(getattr(value, "read", None)):
        raise InvalidInput("data", f"must be bytes or a binary stream, not {type(value).__name__}")
    stream: IO[bytes] = value  # type: ignore[assignment]  # duck-typed: anything with read()
    return stream


MAX_NAME_BYTES = 255
"""Longest file name most file systems hold (NAME_MAX)."""
MAX_PATH_BYTES = 4096
"""Longest path the operating system takes (PATH_MAX on Linux)."""


def file_path(field: str, value: object) -> Path:
    """A file system path the operating system can take: no NUL, text it can encode, names of
    at most 255 bytes; otherwise InvalidInput, never ValueError, UnicodeError or OSError."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidInput(field, "must be a file system path")
    try:
        raw = os.fsencode(value)
    except (TypeError, UnicodeError):
        raise InvalidInput(field, "must be a path the file system can encode") from None
    if not raw:
        raise InvalidInput(field, "must be a file system path")
    if b"\0" in raw:
        raise InvalidInput(field, "must not contain a NUL character")
    if len(raw) > MAX_PATH_BYTES:
        raise InvalidInput(field, f"is {len(raw)} bytes long; at most {MAX_PATH_BYTES}")
    if any(len(name) > MAX_NAME_BYTES for name in raw.split(b"/")):
        raise InvalidInput(field, f"has a name longer than {MAX_NAME_BYTES} bytes")
    return Path(os.fsdecode(raw))


def progress(value: object) -> None:
    if value is not None and not callable(value):
        raise InvalidInput("progress", "must be a callable taking a byte count")


def regions(field: str, value: object) -> tuple[str, ...]:
    """A store's regions: a non-empty list of region names, each named once."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(field, "must be a list of region names")
    names = tuple(region(field, name) for name in value)
    if not names:
        raise InvalidInput(field, "a store needs at least one region")
    if len(set(names)) != len(names):
        raise InvalidInput(field, "a region appears twice")
    return names


def member(field: str, value: object, options: tuple[str, ...]) -> str:
    """One of ``options`` (named in their order in the refusal), such as a store's regions."""
    if not isinstance(value, str) or value not in options:
        raise InvalidInput(field, f"{shown(value)} is not one of {', '.join(options)}")
    return value


def instance(field: str, value: object, kind: type) -> None:
    """A method's argument of one of the library's types is one."""
    if not isinstance(value, kind):
        raise InvalidInput(field, f"must be a {kind.__name__}, not {type(value).__name__}")


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be True or False")
    return value


def one_of(field: str, value: object, allowed: Mapping[str, Any] | frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(field, f"{shown(value)} is not one of {', '.join(sorted(allowed))}")
    return value


def metadata(field: str, value: object, max_bytes: int = MAX_METADATA_BYTES) -> dict[str, str]:
    """User metadata of a bucket object: lowercase ``[a-z0-9-]`` names, printable ASCII values,
    at most ``max_bytes`` in all; names starting ``multiregion-`` belong to the library."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must map names to values, not {type(value).__name__}")
    total = 0
    for name, text in value.items():
        if not isinstance(name, str) or not _METADATA_NAME.fullmatch(name):
            raise InvalidInput(field, f"name {shown(name)} must be lowercase [a-z0-9-]")
        if name.startswith(RESERVED_METADATA_PREFIX):
            raise InvalidInput(field, f"names starting {RESERVED_METADATA_PREFIX!r} are kept")
        if not isinstance(text, str) or not all(" " <= c <= "~" for c in text):
            raise InvalidInput(field, f"the value of {shown(name)} must be printable ASCII text")
        total += len(name) + len(text)
    if total > max_bytes:
        raise InvalidInput(field, f"is {total} bytes; at most {max_bytes} allowed")
    return dict(value)
