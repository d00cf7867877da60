"""moto servers for the AWS adapter tests, started once per session on loopback ports.

Tests isolate themselves by fresh bucket and table names. boto3 gets dummy credentials from
the environment, so its default chain never looks for real ones (nor asks an instance
metadata service).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer
from multiregion.testing.plugin import require_live
from tests.aws import iam
from tests.aws.route53_rules import Route53Rules, started

_REAL_ENV = {name: os.environ.get(name) for name in CREDENTIALS_ENV}
"""The environment as the user started the run, for the opt-in live tests."""

FAST = {"max_attempts": 1, "connect_timeout_s": 2.0, "read_timeout_s": 20.0}
"""Adapter settings against moto: one attempt (moto answers 500 for what it lacks)."""


@pytest.fixture(scope="session", autouse=True)
def _dummy_credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session", autouse=True)
def iam_calls(_dummy_credentials: None) -> Iterator[iam.Recorder]:
    """Every API operation the adapters call in this run must be in their documented IAM
    policy: a missing action fails the run at teardown, naming it."""
    recorder = iam.Recorder()
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-send", recorder)
    yield recorder
    boto3.DEFAULT_SESSION.events.unregister("before-send", recorder)
    absent = iam.missing(recorder.calls, iam.policies())
    assert not absent, f"actions missing from the IAM policies in {iam.DOC}: {absent}"


@pytest.fixture(scope="session")
def moto(_dummy_credentials: None) -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def route53_rules(moto: MotoServer) -> Iterator[Route53Rules]:
    """Route 53's own rules in front of moto: the Route 53 adapters' tests go through it, so
    that a request Route 53 would refuse fails the test."""
    yield from started(moto.url)


@pytest.fixture
def raw(moto: MotoServer) -> Callable[..., Any]:
    """Plain boto3 clients on the moto server, to read back what an adapter did."""

    def client(service: str, region: str = "us-east-1") -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region,
            endpoint_url=moto.url,
            config=Config(retries={"max_attempts": 1}),
        )

    return client


@pytest.fixture
def fresh_name() -> Callable[[str], str]:
    return lambda kind: f"mr-{kind}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def moto_per_region(_dummy_credentials: None) -> Iterator[dict[str, MotoServer]]:
    """One moto server per region, so that stopping one is a regional outage."""
    servers = {"us-east-1": MotoServer(), "eu-west-1": MotoServer()}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def live_aws(iam_calls: iam.Recorder) -> Iterator[None]:
    """Real AWS through the user's own credential chain; skips unless MULTIREGION_LIVE=aws."""
    require_live("aws")
    previous = boto3.DEFAULT_SESSION
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _REAL_ENV.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-send", iam_calls)
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = previous
