"""``multiregion cost --config FILE``: what the standby footprint of a deployment costs a month.

The footprint is what keeps the second region ready: managed health checks, the routed DNS
name's zone and queries, the store's replicated writes and stored data in every region, and
the backup bucket. Each line is a quantity times a published list price from
``data/prices.json``, where every price names its source page and the date it was read. What a
spec cannot say is an option with a default (queries a month, writes a second, GB stored, RU
per write on Cosmos DB) and is printed with the estimate. The local provider costs nothing;
a provider this file has no prices for is listed as not priced, never guessed.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from multiregion.commands.output import add_json, emit
from multiregion.deployment import DeploymentSpec, load
from multiregion.errors import InvalidInput
from multiregion.model import Geo, HealthCheck, Latency

COSMOS_MINIMUM_RU = 400
"""The least standard throughput a Cosmos DB container can have (RU/s)."""
FAST_INTERVAL_S = 30
"""Route 53 and Traffic Manager bill checks more often than every 30 s as an extra feature."""


@attrs.frozen
class Price:
    key: str
    amount: float
    unit: str
    source: str
    read_in: str
    read_on: str


@attrs.frozen
class PriceBook:
    """The prices file: list prices in one currency as of one date."""

    as_of: str
    currency: str
    hours_per_month: float
    prices: Mapping[str, Price]

    @classmethod
    def load(cls, path: Path | None = None) -> PriceBook:
        if path is None:
            text = resources.files("multiregion").joinpath("data/prices.json").read_text()
        else:
            try:
                text = path.read_text()
            except OSError as exc:
                raise InvalidInput("prices", f"cannot read {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            prices = {
                key: Price(key=key, **{k: entry[k] for k in _PRICE_FIELDS})
                for key, entry in data["prices"].items()
            }
            return cls(data["as_of"], data["currency"], float(data["hours_per_month"]), prices)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("prices", f"not a prices file: {exc}") from exc

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]


_PRICE_FIELDS = ("amount", "unit", "source", "read_in", "read_on")


@attrs.frozen
class Usage:
    """What the spec cannot tell: the workload the estimate assumes."""

    queries_per_month: float
    writes_per_second: float
    stored_gb: float
    backup_gb: float
    ru_per_write: float

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Usage):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(field.name, f"must be a number >= 0, not {value!r}")


@attrs.frozen
class Line:
    """One priced item: ``quantity`` units of ``price``."""

    part: str
    provider: str
    item: str
    quantity: float
    price: Price

    @property
    def monthly(self) -> float:
        return self.quantity * self.price.amount


Estimator = Callable[[DeploymentSpec, Usage, PriceBook], Iterator[Line]]


def _route53(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    yield Line("router", "aws", "Route 53 hosted zone", 1, book["aws.route53.hosted_zone"])
    kind = {Latency: "latency", Geo: "geo"}.get(type(spec.route.policy), "standard")
    queries = usage.queries_per_month / 1e6
    yield Line(
        "router", "aws", f"Route 53 {kind} queries", queries, book[f"aws.route53.queries.{kind}"]
    )


def _route53_checks(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    check, count = spec.route.health_check, len(spec.route.endpoints)
    if check is None:
        return
    price = book["aws.route53.health_check.basic_external"]
    yield Line("probe", "aws", "Route 53 health checks", count, price)
    features = [name for name, used in _features(check) if used]
    if features:
        yield Line(
            "probe",
            "aws",
            f"Route 53 health check features ({', '.join(features)})",
            count * len(features),
            book["aws.route53.health_check.feature_external"],
        )


def _features(check: HealthCheck) -> list[tuple[str, bool]]:
    """Route 53's optional features the check uses, each billed on its own."""
    return [
        ("HTTPS", check.protocol == "https"),
        ("fast interval", check.interval_s < FAST_INTERVAL_S),
    ]


def _traffic_manager(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    queries = usage.queries_per_month / 1e6
    yield Line(
        "router",
        "azure",
        "Traffic Manager DNS queries",
        queries,
        book["azure.trafficmanager.queries"],
    )


def _traffic_manager_checks(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    check, count = spec.route.health_check, len(spec.route.endpoints)
    if check is None:
        return
    yield Line(
        "probe",
        "azure",
        "Traffic Manager health checks, external endpoints",
        count,
        book["azure.trafficmanager.health_check_external"],
    )
    if check.interval_s < FAST_INTERVAL_S:
        yield Line(
            "probe",
            "azure",
            "Traffic Manager fast interval add-on",
            count,
            book["azure.trafficmanager.fast_interval_external"],
        )


def _cloud_dns(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    hours = book.hours_per_month
    yield Line("router", "gcp", "Cloud DNS managed zone", hours, book["gcp.clouddns.managed_zone"])
    queries = usage.queries_per_month / 1e6
    yield Line(
        "router",
        "gcp",
        "Cloud DNS routing policy queries",
        queries,
        book["gcp.clouddns.routing_policy_queries"],
    )


def _cloud_dns_checks(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    if spec.route.health_check is None:
        return
    hours = len(spec.route.endpoints) * book.hours_per_month
    yield Line("probe", "gcp", "Cloud DNS health checks", hours, book["gcp.clouddns.health_check"])


def _writes(usage: Usage, book: PriceBook) -> float:
    return usage.writes_per_second * book.hours_per_month * 3600


def _dynamodb(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    regions = len(spec.regions)
    replicated = _writes(usage, book) * regions / 1e6
    yield Line(
        "store",
        "aws",
        f"DynamoDB replicated writes in {regions} regions",
        replicated,
        book["aws.dynamodb.replicated_write"],
    )
    yield Line(
        "store",
        "aws",
        f"DynamoDB storage in {regions} regions",
        usage.stored_gb * regions,
        book["aws.dynamodb.storage"],
    )


def _cosmos(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    regions = len(spec.regions)
    needed = usage.writes_per_second * usage.ru_per_write
    ru = max(COSMOS_MINIMUM_RU, math.ceil(needed / 100) * 100)
    yield Line(
        "store",
        "azure",
        f"Cosmos DB {ru} RU/s in {regions} regions",
        ru / 100 * book.hours_per_month * regions,
        book["azure.cosmos.throughput"],
    )
    yield Line(
        "store",
        "azure",
        f"Cosmos DB storage in {regions} regions",
        usage.stored_gb * regions,
        book["azure.cosmos.storage"],
    )


def _firestore(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    writes = _writes(usage, book) / 1e5
    yield Line(
        "store", "gcp", "Firestore writes (multi-region)", writes, book["gcp.firestore.writes"]
    )
    yield Line(
        "store",
        "gcp",
        "Firestore storage (multi-region)",
        usage.stored_gb,
        book["gcp.firestore.storage"],
    )


def _s3(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    yield Line("bucket", "aws", "S3 Standard storage", usage.backup_gb, book["aws.s3.storage"])


def _blob(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    yield Line(
        "bucket", "azure", "Blob Hot LRS storage", usage.backup_gb, book["azure.blob.storage"]
    )


def _gcs(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Iterator[Line]:
    gib_hours = usage.backup_gb * book.hours_per_month
    yield Line(
        "bucket", "gcp", "Cloud Storage Standard storage", gib_hours, book["gcp.storage.standard"]
    )


ESTIMATORS: Mapping[tuple[str, str], Estimator] = {
    ("router", "aws"): _route53,
    ("probe", "aws"): _route53_checks,
    ("store", "aws"): _dynamodb,
    ("bucket", "aws"): _s3,
    ("router", "azure"): _traffic_manager,
    ("probe", "azure"): _traffic_manager_checks,
    ("store", "azure"): _cosmos,
    ("bucket", "azure"): _blob,
    ("router", "gcp"): _cloud_dns,
    ("probe", "gcp"): _cloud_dns_checks,
    ("store", "gcp"): _firestore,
    ("bucket", "gcp"): _gcs,
}
FREE = frozenset({"local"})
"""Providers that run on the user's own machines: no cloud charge."""


@attrs.frozen
class Estimate:
    lines: tuple[Line, ...]
    not_priced: Mapping[str, str]
    """part -> why it has no line (the local provider, or a provider without prices)."""

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)


def estimate(spec: DeploymentSpec, usage: Usage, book: PriceBook) -> Estimate:
    lines: list[Line] = []
    not_priced: dict[str, str] = {}
    for part, provider in spec.providers.items():
        estimator = ESTIMATORS.get((part, provider))
        if estimator is not None:
            lines.extend(estimator(spec, usage, book))
        elif provider in FREE:
            not_priced[part] = f"{provider}: runs on your own machines, no cloud charge"
        else:
            not_priced[part] = f"{provider}: no published prices in the prices file"
    return Estimate(tuple(lines), not_priced)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "the monthly cost of the standby footprint, from published list prices"
    parser = commands.add_parser("cost", help=text, description=text[0].upper() + text[1:])
    parser.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="the deployment spec"
    )
    workload = parser.add_argument_group("assumptions (the spec cannot say them)")
    workload.add_argument(
        "--queries-per-month",
        type=float,
        default=10e6,
        metavar="N",
        help="DNS queries of the routed name (default 10 million)",
    )
    workload.add_argument(
        "--writes-per-second",
        type=float,
        default=1.0,
        metavar="N",
        help="writes to the store, on average (default 1)",
    )
    workload.add_argument(
        "--stored-gb",
        type=float,
        default=1.0,
        metavar="GB",
        help="data in the store, per region (default 1)",
    )
    workload.add_argument(
        "--backup-gb",
        type=float,
        default=10.0,
        metavar="GB",
        help="backups kept in the bucket (default 10)",
    )
    workload.add_argument(
        "--ru-per-write",
        type=float,
        default=10.0,
        metavar="RU",
        help="Cosmos DB request units one write costs (default 10)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        metavar="FILE",
        help="a prices file of the same form instead of the shipped one",
    )
    add_json(parser, "the estimate")
    parser.set_defaults(handler=run_cost)


def run_cost(args: argparse.Namespace) -> int:
    usage = Usage(
        args.queries_per_month,
        args.writes_per_second,
        args.stored_gb,
        args.backup_gb,
        args.ru_per_write,
    )
    book = PriceBook.load(args.prices)
    spec = load(args.config)
    result = estimate(spec, usage, book)
    emit(args, _data(spec, usage, book, result), _text(spec, usage, book, result))
    return 0


def _data(spec: DeploymentSpec, usage: Usage, book: PriceBook, result: Estimate) -> dict[str, Any]:
    return {
        "deployment": spec.name,
        "file": spec.source,
        "currency": book.currency,
        "prices_as_of": book.as_of,
        "monthly_total": round(result.total, 2),
        "lines": [
            {
                "part": line.part,
                "provider": line.provider,
                "item": line.item,
                "quantity": round(line.quantity, 6),
                "unit": line.price.unit,
                "unit_price": line.price.amount,
                "monthly": round(line.monthly, 4),
                "price": line.price.key,
                "source": line.price.source,
                "read_in": line.price.read_in,
                "read_on": line.price.read_on,
            }
            for line in result.lines
        ],
        "assumptions": attrs.asdict(usage),
        "not_priced": dict(result.not_priced),
    }


def _text(spec: DeploymentSpec, usage: Usage, book: PriceBook, result: Estimate) -> str:
    money = f"{book.currency} {{:,.2f}}".format
    lines = [
        f"{spec.name} ({spec.source}): about {money(result.total)} a month, "
        f"list prices as of {book.as_of}"
    ]
    width = max((len(line.item) for line in result.lines), default=0)
    for line in result.lines:
        lines.append(
            f"  {line.part:<6}  {line.item:<{width}}  {line.quantity:>14,.2f} x "
            f"{line.price.amount:g} per {line.price.unit}  = {money(line.monthly)}"
        )
    lines += [f"  {part:<6}  not priced: {why}" for part, why in result.not_priced.items()]
    lines.append(
        f"Assuming {usage.queries_per_month:,.0f} DNS queries a month, "
        f"{usage.writes_per_second:g} writes a second, {usage.stored_gb:g} GB in the store per "
        f"region, {usage.backup_gb:g} GB of backups, {usage.ru_per_write:g} RU per Cosmos DB "
        "write (change them with the options); each price's source: --json or docs/cost.md."
    )
    return "\n".join(lines)
