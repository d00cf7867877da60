"""No secret in any repr, str, log line or error message: every adapter and a spec are built
with canary secrets (keys, a SAS signature, a password and a token in URLs, credentials), then
made to fail, and every text they and their errors produce is searched for the canaries.

The adapters point at a closed loopback port, so each remote call fails at once; where a
service would refuse the key itself, Azurite does (a real HTTP 403 through the real SDK).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion import redact, registry
from multiregion.deployment import parse
from multiregion.errors import MultiregionError, Unavailable

ACCOUNT_KEY = base64.b64encode(b"CANARY-ACCOUNT-KEY-0123456789").decode()
COSMOS_KEY = base64.b64encode(b"CANARY-COSMOS-KEY-0123456789").decode()
SAS_SIG = "CANARYSASSIG0123"
PASSWORD = "CANARYPASSWORD"
TOKEN = "CANARYTOKEN0123"
AWS_SECRET = "CANARYAWSSECRET0123"
CANARIES = (ACCOUNT_KEY, COSMOS_KEY, SAS_SIG, PASSWORD, TOKEN, AWS_SECRET, "CANARY")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Canary:
    """A TokenCredential / google credentials whose token is a canary."""

    token = TOKEN
    expired = False
    valid = True

    def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, 2**31)

    def refresh(self, _request: Any) -> None:
        return None

    def before_request(
        self, _request: Any, _method: str, _url: str, headers: dict[str, str]
    ) -> None:
        headers["authorization"] = f"Bearer {TOKEN}"

    def apply(self, headers: dict[str, str], token: str | None = None) -> None:
        headers["authorization"] = f"Bearer {TOKEN}"

    def __repr__(self) -> str:  # what a careless credential would show
        return f"Canary(token={TOKEN!r})"


def cloud_settings(port: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Settings of every cloud adapter, with canary secrets, aimed at a closed port."""
    url = f"http://127.0.0.1:{port}"
    aws = {"endpoint_url": url, "max_attempts": 1, "connect_timeout_s": 1.0}
    return {
        ("aws", "router"): {"zone": "example.test", **aws, "read_timeout_s": 1.0},
        ("aws", "store"): {"table": "t", "regions": ["us-east-1"], **aws},
        ("aws", "bucket"): {"bucket": "b", **aws},
        ("aws", "probe"): dict(aws),
        ("azure", "router"): {
            "subscription_id": "00000000-0000-0000-0000-000000000000",
            "resource_group": "rg",
            "endpoint": f"http://admin:{PASSWORD}@127.0.0.1:{port}/?token={TOKEN}",
            "credential": Canary(),
            "retries": 0,
            "timeout_s": 1.0,
        },
        ("azure", "store"): {
            "endpoint": f"https://127.0.0.1:{port}/?sig={SAS_SIG}",
            "database": "d",
            "container": "c",
            "regions": ["eastus"],
            "key": COSMOS_KEY,
            "create": False,
            "retries": 0,
            "timeout_s": 1.0,
        },
        ("azure", "bucket"): {
            "account_url": f"https://127.0.0.1:{port}/acct?sv=2022-11-02&sp=r&sig={SAS_SIG}",
            "container": "backups",
            "credential": Canary(),
            "create": False,
            "retries": 0,
            "timeout_s": 1.0,
        },
        ("azure", "probe"): {
            "subscription_id": "00000000-0000-0000-0000-000000000000",
            "resource_group": "rg",
            "endpoint": f"http://127.0.0.1:{port}/?code={TOKEN}",
            "credential": Canary(),
            "retries": 0,
            "timeout_s": 1.0,
        },
        ("gcp", "router"): {
            "project": "p",
            "zone": "z",
            "endpoint": f"{url}/?access_token={TOKEN}",
            "credentials": Canary(),
            "num_retries": 0,
            "timeout_s": 1.0,
        },
        ("gcp", "store"): {
            "project": "p",
            "collection": "c",
            "emulator_host": f"127.0.0.1:{port}",
            "credentials": Canary(),
            "timeout_s": 1.0,
            "retry_timeout_s": 1.0,
        },
        ("gcp", "bucket"): {
            "bucket": "b",
            "project": "p",
            "endpoint": f"{url}/?token={TOKEN}",
            "credentials": Canary(),
            "timeout_s": 1.0,
            "retry_timeout_s": 1.0,
        },
        ("gcp", "probe"): {
            "project": "p",
            "zone": "z",
            "endpoint": f"{url}/?token={TOKEN}",
            "credentials": Canary(),
            "num_retries": 0,
            "timeout_s": 1.0,
        },
    }


def first_use(part: str, adapter: Any) -> None:
    """One remote call of ``part`` (refused by the closed port)."""
    if part == "router":
        adapter.get("app.example.test")
    elif part == "store" or part == "bucket":
        adapter.get("k")
    else:
        adapter.list()


def texts_of(error: BaseException) -> list[str]:
    """What a library error shows: str, repr and the formatted traceback line."""
    return [str(error), repr(error), *error.args, f"{type(error).__name__}: {error}"]


def assert_clean(texts: list[str], where: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in str(text), f"{where} shows a secret: {text[:300]}"


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record the library logs (every level) while the test runs."""
    caught: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("multiregion")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield caught
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def aws_canary_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.mark.parametrize(("provider", "part"), sorted(cloud_settings(0)))
def test_no_cloud_adapter_shows_a_secret(
    provider: str, part: str, records: list[logging.LogRecord], aws_canary_credentials: None
) -> None:
    settings = cloud_settings(closed_port())[provider, part]
    texts: list[str] = []
    failed: list[MultiregionError] = []
    try:
        adapter = registry.provider(provider).build(part, settings)
    except MultiregionError as exc:
        failed.append(exc)
    else:
        with contextlib.closing(adapter):
            texts += [repr(adapter), str(adapter)]
            try:
                first_use(part, adapter)
            except MultiregionError as exc:
                failed.append(exc)
    for error in failed:
        texts += texts_of(error)
    texts += [r.getMessage() for r in records]
    assert texts
    assert_clean(texts, f"{provider} {part}")


def test_the_blob_adapter_refused_by_azurite_shows_no_key_nor_sas(
    records: list[logging.LogRecord],
) -> None:
    pytest.importorskip("azure.storage.blob")
    from multiregion.providers.azure.blob import BlobBucket
    from multiregion.testing.emulators.azure import Azurite

    try:
        azurite = Azurite().start()
    except Unavailable as exc:
        pytest.skip(f"Azurite cannot run here: {exc}")
    with contextlib.ExitStack() as running:
        running.callback(azurite.stop)
        with_key = BlobBucket(azurite.url, "backups", account_key=ACCOUNT_KEY, create=False)
        with_sas = BlobBucket(
            f"{azurite.url}?sv=2022-11-02&sp=r&sig={SAS_SIG}",
            "backups",
            account_key=ACCOUNT_KEY,
            create=False,
        )
        errors = []
        for bucket in (with_key, with_sas):
            with contextlib.closing(bucket):
                with pytest.raises(MultiregionError) as info:
                    bucket.put("k", b"v")
                errors.append(info.value)
                assert_clean([repr(bucket), str(bucket)], "BlobBucket")
    assert len(errors) == 2
    assert_clean([t for e in errors for t in texts_of(e)], "Blob errors")
    assert_clean([r.getMessage() for r in records], "the library's log")


def spec_with_secrets(port: int) -> dict[str, Any]:
    return {
        "deployment": {"name": "shop", "provider": "azure"},
        "regions": [{"name": "eastus", "endpoint": "127.0.0.2"}],
        "route": {"name": "app.shop.test", "policy": "weighted"},
        "store": {
            "endpoint": f"https://127.0.0.1:{port}/",
            "database": "d",
            "container": "c",
            "key": COSMOS_KEY,
        },
        "bucket": {
            "account_url": f"https://127.0.0.1:{port}/acct?sv=2022-11-02&sig={SAS_SIG}",
            "container": "backups",
            "account_key": ACCOUNT_KEY,
        },
    }


def test_a_spec_shows_no_key_nor_sas() -> None:
    spec = parse(spec_with_secrets(closed_port()))
    assert spec.settings["store"]["key"] == COSMOS_KEY  # kept for the adapter
    assert_clean([repr(spec), str(spec)], "DeploymentSpec")


def test_a_spec_error_shows_no_secret() -> None:
    data = spec_with_secrets(closed_port())
    data["store"]["key"] = 5
    data["bucket"]["account_url"] = f"ftp://admin:{PASSWORD}@host/?sig={SAS_SIG}"
    data["bucket"]["acount_key"] = data["bucket"].pop("account_key")
    with pytest.raises(MultiregionError) as info:
        parse(data)
    assert "acount_key" in str(info.value)
    assert_clean(texts_of(info.value), "a spec error")


def test_the_command_line_shows_no_secret(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.toml"
    spec.write_text(
        f"""
[deployment]
name = "shop"
provider = "azure"
[[regions]]
name = "eastus"
endpoint = "127.0.0.2"
[route]
name = "app.shop.test"
policy = "weighted"
[store]
endpoint = "https://127.0.0.1:{closed_port()}/?sig={SAS_SIG}"
database = "d"
container = "c"
key = "{COSMOS_KEY}"
regions = ["eastus"]
retries = 0
timeout_s = 1.0
"""
    )
    for argv in (["validate", "--json"], ["status"], ["backups", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "multiregion", "-vv", *argv, "--config", str(spec)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout or done.stderr
        assert_clean([done.stdout, done.stderr], f"multiregion {argv[0]}")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"https://a.blob.core.windows.net/c?sv=1&sig={SAS_SIG}&se=2", SAS_SIG),
        (f"https://user:{PASSWORD}@db.example.test:5432/x", PASSWORD),
        (f"AccountName=a;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net", ACCOUNT_KEY),
        (f"Server=tcp:x;Password={PASSWORD};User ID=u", PASSWORD),
        (f"Authorization: Bearer {TOKEN}", TOKEN),
        (f"GET /x?X-Amz-Signature={TOKEN}&X-Amz-Date=1 HTTP/1.1", TOKEN),
        (f"https://storage.test/o?X-Goog-Signature={TOKEN}", TOKEN),
    ],
)
def test_one_rule_hides_every_kind_of_secret(text: str, secret: str) -> None:
    cleaned = redact.text(text)
    assert secret not in cleaned
    assert redact.MASK in cleaned
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "seen %s", (text,), None)
    assert redact.RedactingFilter().filter(record)
    assert secret not in record.getMessage()
