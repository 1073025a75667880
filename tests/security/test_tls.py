"""TLS on both listeners, with a self-signed certificate made for the test."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import urllib.request
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.exceptions import InvalidMessage
from websockets.sync.client import connect


def _self_signed(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    from tests.conftest import start_server

    directory = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(directory)
    server = start_server(directory, {"tls": {"cert_file": str(cert), "key_file": str(key), "https_only": True}})
    server.cert = cert
    yield server
    server.stop()


def _client_context(cert, maximum=None):
    context = ssl.create_default_context(cafile=str(cert))
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    return context


def test_https_and_wss(tls_server):
    context = _client_context(tls_server.cert)
    with urllib.request.urlopen(f"https://127.0.0.1:{tls_server.http_port}/health", context=context,
                                timeout=10) as resp:
        assert resp.status == 200
        assert "max-age=" in resp.headers["strict-transport-security"]
    with _wss(f"wss://127.0.0.1:{tls_server.ws_port}/events?topic=secure", context) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "connected"
        body = json.dumps({"topic": "secure", "event": {"id": "tls-1"}}).encode()
        request = urllib.request.Request(f"https://127.0.0.1:{tls_server.http_port}/broadcast", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            assert resp.status == 200
        assert json.loads(ws.recv(timeout=5))["id"] == "tls-1"


def _wss(url, context):
    """Once in a full `make test` run on the loaded 2-core machine the server closed a wss
    handshake before answering (not reproduced in 300 runs under load): one retry."""
    try:
        return connect(url, ssl=context, open_timeout=10)
    except InvalidMessage:
        return connect(url, ssl=context, open_timeout=10)


@pytest.mark.parametrize("listener", ["http_port", "ws_port"])
def test_tls_1_2_accepted_older_refused(tls_server, listener):
    port = getattr(tls_server, listener)
    context = _client_context(tls_server.cert, ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _client_context(tls_server.cert, ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    if "NO_PROTOCOLS_AVAILABLE" in str(refused.value):
        pytest.skip("this OpenSSL cannot offer TLS 1.1, so the server's refusal cannot be observed")


@pytest.mark.parametrize("listener", ["http_port", "ws_port"])
def test_plain_connections_get_no_answer(tls_server, listener):
    port = getattr(tls_server, listener)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except (ConnectionError, socket.timeout):
            data = b""
    assert b"healthy" not in data and not data.startswith(b"HTTP/1.1 200")
