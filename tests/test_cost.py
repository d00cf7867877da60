"""``multiregion cost``: each line is a spec-derived quantity times a price of the dated file."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from multiregion import cli
from multiregion.commands.cost import PriceBook
from multiregion.deployment import load

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HOURS = PriceBook.load().hours_per_month


def _cost(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = cli.main(["cost", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 and "--json" in argv else out, err


def _estimate(capsys: pytest.CaptureFixture[str], spec: Path, *options: str) -> dict[str, Any]:
    code, data, err = _cost(capsys, "--config", str(spec), "--json", *options)
    assert code == 0, err
    return dict(data)


def _line(data: dict[str, Any], price: str) -> dict[str, Any]:
    (line,) = [line for line in data["lines"] if line["price"] == price]
    return dict(line)


def _price(key: str) -> float:
    return PriceBook.load()[key].amount


def test_health_checks_are_priced_per_endpoint_with_their_features(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = EXAMPLES / "active_passive" / "deploy.aws.toml"
    endpoints = len(load(spec).route.endpoints)
    data = _estimate(capsys, spec)  # https, every 10 s: two optional features per check
    checks = _line(data, "aws.route53.health_check.basic_external")
    features = _line(data, "aws.route53.health_check.feature_external")
    assert checks["monthly"] == pytest.approx(endpoints * _price(checks["price"]))
    assert features["quantity"] == 2 * endpoints
    assert features["monthly"] == pytest.approx(2 * endpoints * _price(features["price"]))


def test_replicated_writes_scale_with_the_rate_and_the_regions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = EXAMPLES / "active_passive" / "deploy.aws.toml"
    regions = len(load(spec).regions)
    one = _line(_estimate(capsys, spec), "aws.dynamodb.replicated_write")
    three = _line(
        _estimate(capsys, spec, "--writes-per-second", "3"), "aws.dynamodb.replicated_write"
    )
    expected = 3 * HOURS * 3600 * regions / 1e6 * _price("aws.dynamodb.replicated_write")
    assert three["monthly"] == pytest.approx(expected, rel=1e-4)
    assert three["monthly"] == pytest.approx(3 * one["monthly"], rel=1e-4)


def test_cosmos_throughput_is_provisioned_in_hundreds_from_400(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = EXAMPLES / "active_passive" / "deploy.azure.toml"
    regions = len(load(spec).regions)
    idle = _line(_estimate(capsys, spec), "azure.cosmos.throughput")
    busy = _line(
        _estimate(capsys, spec, "--writes-per-second", "101", "--ru-per-write", "10"),
        "azure.cosmos.throughput",
    )
    assert idle["quantity"] == pytest.approx(4 * HOURS * regions)  # the 400 RU/s minimum
    assert busy["quantity"] == pytest.approx(11 * HOURS * regions)  # 1010 RU/s -> 1100
    assert "1100 RU/s" in busy["item"]


def test_the_total_is_the_sum_of_the_lines_and_the_text_shows_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = EXAMPLES / "active_active" / "deploy.gcp.toml"
    data = _estimate(capsys, spec)
    assert data["monthly_total"] == pytest.approx(
        sum(line["monthly"] for line in data["lines"]), abs=0.01
    )
    assert {line["part"] for line in data["lines"]} == {"router", "probe", "store", "bucket"}
    code, text, _ = _cost(capsys, "--config", str(spec))
    assert code == 0
    assert f"USD {data['monthly_total']:,.2f} a month" in text
    assert "10,000,000 DNS queries a month" in text


def test_the_local_provider_costs_nothing_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    data = _estimate(capsys, EXAMPLES / "active_passive" / "deploy.local.toml")
    assert data["lines"] == []
    assert data["monthly_total"] == 0
    assert set(data["not_priced"]) == {"router", "store", "bucket", "probe"}


def test_every_price_is_dated_sourced_and_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    book = PriceBook.load()
    as_of = datetime.date.fromisoformat(book.as_of)
    for price in book.prices.values():
        assert price.amount > 0, price.key
        assert price.source.startswith("https://"), price.key
        assert datetime.date.fromisoformat(price.read_on) <= as_of, price.key
    used = set()
    specs = sorted(EXAMPLES.glob("*/deploy.*.toml"))
    aws = (EXAMPLES / "active_passive" / "deploy.aws.toml").read_text()
    for policy in ("latency", "geo"):  # the Route 53 query prices no example uses
        extra = (
            '\nlocations = { "*" = "us-east-1" }\ndefault = "us-east-1"' if policy == "geo" else ""
        )
        text = aws.replace('policy = "failover"', f'policy = "{policy}"{extra}')
        specs.append(tmp_path / f"{policy}.toml")
        specs[-1].write_text(text.replace('order = ["us-east-1", "us-west-2"]\n', ""))
    for spec in specs:
        used |= {line["price"] for line in _estimate(capsys, spec)["lines"]}
    assert used == set(book.prices)


def test_another_prices_file_is_used_when_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = Path(__file__).resolve().parents[1] / "src" / "multiregion" / "data" / "prices.json"
    data = json.loads(shipped.read_text())
    data["prices"]["aws.s3.storage"]["amount"] *= 10
    data["as_of"] = "2030-01-01"
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps(data))
    spec = EXAMPLES / "active_passive" / "deploy.aws.toml"
    before = _line(_estimate(capsys, spec), "aws.s3.storage")["monthly"]
    after = _estimate(capsys, spec, "--prices", str(mine))
    assert _line(after, "aws.s3.storage")["monthly"] == pytest.approx(10 * before)
    assert after["prices_as_of"] == "2030-01-01"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--writes-per-second", "-1"], "--writes-per-second"),
        (["--backup-gb", "nan"], "--backup-gb"),
        (["--prices", "/nonexistent/prices.json"], "--prices"),
    ],
)
def test_bad_input_names_the_option(
    capsys: pytest.CaptureFixture[str], options: list[str], named: str
) -> None:
    spec = EXAMPLES / "active_passive" / "deploy.aws.toml"
    code, _, err = _cost(capsys, "--config", str(spec), *options)
    assert code == 2
    assert f"error: {named}:" in err
