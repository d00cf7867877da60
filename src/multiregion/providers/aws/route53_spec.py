"""The route as declared, kept in the TXT record set ``_multiregion.<name>``.

Route 53 limits each value of a record set to 4,000 characters and each TXT string to 255,
and a geolocation route over 250 countries spells to more than that. So the JSON is
compressed (zlib, base64) and cut into values of at most ``STRINGS_PER_VALUE`` strings; each
value starts with the string ``mr2 <index> <count>``, because Route 53 keeps a record set's
values in no promised order. Records written as plain JSON strings by earlier versions are
still read.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from multiregion.errors import CorruptData
from multiregion.model import Endpoint, Failover, Geo, HealthCheck, Latency, Route, Weighted
from multiregion.providers.aws.route53_rules import limit

META_LABEL = "_multiregion"
FORMAT = "mr2"
STRING_CHARS = 250
"""Base64 characters per TXT string: quoted, they stay within the 255 Route 53 allows."""
_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _check_to_dict(check: HealthCheck) -> dict[str, Any]:
    return {
        "protocol": check.protocol,
        "port": check.port,
        "path": check.path,
        "interval_s": check.interval_s,
        "timeout_s": check.timeout_s,
        "failure_threshold": check.failure_threshold,
        "success_threshold": check.success_threshold,
        "expected_status": list(check.expected_status),
        "host": check.host,
    }


def _policy_to_dict(route: Route) -> dict[str, Any]:
    policy = route.policy
    if isinstance(policy, Failover):
        return {"kind": "failover", "order": list(policy.order)}
    if isinstance(policy, Weighted):
        return {"kind": "weighted", "weights": [list(p) for p in policy.weights]}
    if isinstance(policy, Latency):
        return {"kind": "latency"}
    assert isinstance(policy, Geo)
    return {
        "kind": "geo",
        "locations": [list(p) for p in policy.locations],
        "default": policy.default,
    }


def _strings_per_value() -> int:
    """Quoted strings and the spaces between them within one value (4,000 characters)."""
    return (limit("value_chars") + 1) // (STRING_CHARS + 3) - 1


def spec_to_values(route: Route, owner: str) -> list[str]:
    """The TXT values that hold ``route`` and its owner, in order."""
    spec = {
        "owner": owner,
        "ttl": route.ttl,
        "endpoints": [[e.name, e.region, e.target] for e in route.endpoints],
        "policy": _policy_to_dict(route),
        "check": None if route.health_check is None else _check_to_dict(route.health_check),
    }
    text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
    packed = base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    strings = [packed[i : i + STRING_CHARS] for i in range(0, len(packed), STRING_CHARS)]
    per_value = _strings_per_value()
    groups = [strings[i : i + per_value] for i in range(0, len(strings), per_value)]
    return [
        " ".join(f'"{s}"' for s in [f"{FORMAT} {index} {len(groups)}", *group])
        for index, group in enumerate(groups)
    ]


def spec_from_values(name: str, values: list[str]) -> tuple[str, Route]:
    """The owner and the route kept in the TXT values; ``CorruptData`` if tampered with."""
    try:
        return _decode(name, _spec_text(values))
    except (ValueError, KeyError, TypeError, IndexError, zlib.error) as exc:
        raise CorruptData(f"the TXT record {META_LABEL}.{name} is not a readable route") from exc


def _strings(value: str) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", piece) for piece in _TXT_STRING.findall(value)]


def _spec_text(values: list[str]) -> str:
    parsed = [_strings(v) for v in values]
    if not all(p and p[0].startswith(FORMAT + " ") for p in parsed):
        if len(parsed) != 1:
            raise ValueError("more than one value in the old format")
        return "".join(parsed[0])  # written before the mr2 format: plain JSON strings
    ordered: dict[int, list[str]] = {}
    for strings in parsed:
        _, index, count = strings[0].split(" ")
        if int(count) != len(parsed):
            raise ValueError("values missing")
        ordered[int(index)] = strings[1:]
    packed = "".join("".join(ordered[i]) for i in range(len(parsed)))
    return zlib.decompress(base64.b64decode(packed, validate=True)).decode()


def _decode(name: str, text: str) -> tuple[str, Route]:
    spec = json.loads(text)
    kind = spec["policy"]["kind"]
    policy: Failover | Weighted | Latency | Geo
    if kind == "failover":
        order = spec["policy"]["order"]
        policy = Failover(order[0], order[1:])
    elif kind == "weighted":
        policy = Weighted(dict(spec["policy"]["weights"]))
    elif kind == "latency":
        policy = Latency()
    else:
        policy = Geo(dict(spec["policy"]["locations"]), default=spec["policy"]["default"])
    check = spec["check"]
    if check is not None:
        check = HealthCheck(**{**check, "expected_status": tuple(check["expected_status"])})
    route = Route(
        name,
        [Endpoint(n, r, t) for n, r, t in spec["endpoints"]],
        policy,
        ttl=spec["ttl"],
        health_check=check,
    )
    return str(spec["owner"]), route
