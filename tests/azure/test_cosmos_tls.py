"""The Cosmos DB client's transport for loopback emulators: one TLS context, verification kept."""

from __future__ import annotations

import ssl

import pytest
import requests

from multiregion.providers.azure import loopback_tls
from multiregion.testing.emulators.azure import CosmosServer


def _context(session: requests.Session, url: str) -> ssl.SSLContext:
    """The TLS context of the connection an unverified GET to ``url`` was sent on (urllib3
    builds one per connection unless given one)."""
    response = session.get(url, verify=False, stream=True, timeout=10)
    try:
        context = response.raw.connection.ssl_context
    finally:
        response.close()
    assert isinstance(context, ssl.SSLContext)
    return context


def test_unverified_connections_share_one_context_and_verified_ones_still_verify(
    cosmos_server: CosmosServer,
) -> None:
    session = loopback_tls.transport().session
    assert session is not None
    try:
        first = _context(session, cosmos_server.url)
        with pytest.raises(requests.exceptions.SSLError):  # self-signed: refused when verified
            session.get(cosmos_server.url, timeout=10)
        second = _context(session, cosmos_server.url)  # cosmosdb-server closed the first one
        assert second is first
        assert first.verify_mode == ssl.CERT_NONE
        # No certificate store was loaded into it: not per connection (the cost this saves),
        # nor by the verified request, which went through its own context.
        assert first.cert_store_stats()["x509_ca"] == 0
    finally:
        session.close()
