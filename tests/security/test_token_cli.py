"""`unified-events token create`: the printed token verifies with the server's key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.security.conftest import SECRET, upgrade_status


def cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in ("UE_AUTH_SECRET", "BETTER_AUTH_SECRET")}
    return subprocess.run([sys.executable, "-m", "unified_events.cli", "token", "create", *args],
                          env={**environ, **(env or {})}, capture_output=True, text=True, timeout=60)


def test_create_hs256():
    out = cli("--sub", "alice", "--role", "subscriber", "--sub-topics", "orders.*", "--ttl", "1h",
              env={"UE_AUTH_SECRET": SECRET})
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["role"] == "subscriber" and claims["sub_topics"] == ["orders.*"]
    assert claims["exp"] - claims["iat"] == 3600 and "pub_topics" not in claims
    out = cli("--sub", "svc", "--role", "publisher", "--pub-topics", "a.*,b", "--ttl", "90s", "--json",
              env={"UE_AUTH_SECRET": SECRET})
    data = json.loads(out.stdout)
    assert data["claims"]["pub_topics"] == ["a.*", "b"] and data["claims"]["exp"] - data["claims"]["iat"] == 90
    assert jwt.decode(data["token"], SECRET, algorithms=["HS256"])["sub"] == "svc"


def test_create_refusals():
    assert "UE_AUTH_SECRET" in cli("--sub", "a").stderr
    assert cli("--sub", "a", "--ttl", "soon", env={"UE_AUTH_SECRET": SECRET}).returncode == 2
    bad = cli("--sub", "a", "--sub-topics", "../etc", env={"UE_AUTH_SECRET": SECRET})
    assert bad.returncode == 2 and "invalid topic pattern" in bad.stderr


def test_es256_with_a_public_key_file(tmp_path, make_server):
    key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "private.pem"
    public = tmp_path / "public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    out = cli("--sub", "bob", "--sub-topics", "x", "--algorithm", "ES256", "--private-key", str(private))
    assert out.returncode == 0, out.stderr
    srv = make_server({"require_auth": True, "auth": {"algorithm": "ES256", "public_key_file": str(public)}})
    assert upgrade_status(srv, "x", query=f"token={out.stdout.strip()}") == 101
    hs = jwt.encode({"sub": "bob", "exp": 2**31}, public.read_text()[:64], algorithm="HS256")
    assert upgrade_status(srv, "x", query=f"token={hs}") == 401  # only the configured algorithm


def test_rs256_with_a_jwks_file(tmp_path, make_server):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    srv = make_server({"require_auth": True, "auth": {"algorithm": "RS256", "jwks_file": str(tmp_path / "jwks.json")}})
    good = jwt.encode({"sub": "c", "exp": 2**31, "sub_topics": ["y"]}, key, algorithm="RS256", headers={"kid": "k1"})
    unknown = jwt.encode({"sub": "c", "exp": 2**31}, key, algorithm="RS256", headers={"kid": "k2"})
    assert upgrade_status(srv, "y", query=f"token={good}") == 101
    assert upgrade_status(srv, "y", query=f"token={unknown}") == 401
