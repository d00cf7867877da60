"""What Route 53 accepts, from one dated data file (``data/route53.json``, sources inside).

Geolocation codes (continents, ISO 3166-1 countries and UA, US states), latency-record regions
of every partition, and the limits the library checks before it sends a change batch or a
health check. Refresh the file when AWS documents a new region or code.
"""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from importlib import resources
from typing import Any

from multiregion.errors import InvalidInput


@cache
def data() -> dict[str, Any]:
    text = resources.files("multiregion.providers.aws").joinpath("data/route53.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def limit(name: str) -> int:
    return int(data()["limits"][name])


def latency_region(field: str, region: str) -> str:
    if region not in data()["latency_regions"]:
        raise InvalidInput(
            field,
            f"{region!r} is not a region Route 53 latency records take "
            f"(list of {data()['retrieved']})",
        )
    return region


def geo_location(location: str) -> dict[str, str]:
    """The GeoLocation of a continent (``EU``), country (``DE``) or US state (``US-CA``)."""
    known = data()
    if location in known["continents"]:
        return {"ContinentCode": location}
    if location in known["countries"]:
        return {"CountryCode": location}
    country, _, subdivision = location.partition("-")
    if subdivision and subdivision in known["subdivisions"].get(country, ()):
        return {"CountryCode": country, "SubdivisionCode": subdivision}
    raise InvalidInput(
        "policy.locations",
        f"{location!r} is no continent, country or subdivision code Route 53 supports "
        f"(list of {known['retrieved']})",
    )


def public_address(field: str, address: str) -> None:
    """Route 53's checkers probe from the internet: local, private, non-routable and
    multicast addresses (RFC 5735, 6598, 5156) cannot be checked."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return
    if not ip.is_global or ip.is_multicast:
        raise InvalidInput(
            field, f"{address} is not a public address; Route 53's health checkers cannot reach it"
        )
