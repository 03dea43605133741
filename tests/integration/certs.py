"""Credentials made at test time: a CA with server and client certificates, nkeys, and an operator JWT chain.

TLS material comes from the `openssl` command line (the `cryptography` package is not a dependency). NATS
identities are nkeys (ed25519, the `nkeys` package nats-py itself uses for nkey and creds auth); the JWTs of
decentralized auth are encoded here by hand the way nats-io/jwt v2 encodes them: a fixed header, the claims as
JSON, both base64url without padding, and an ed25519 signature by the issuer's nkey over `header.claims`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
import pytest

# --------------------------------------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate, both CA-signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(directory: Path) -> TlsFiles:
    """Generate the CA and both leaf certificates (P-256, valid one day) into `directory`; skip without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    ca_subject = ["-subj", "/CN=hfbus test CA", "-days", "1"]
    ca_extensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), *ca_subject, *ca_extensions)

    def leaf(name: str, usage: str) -> tuple[Path, Path]:
        cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
        extensions = directory / f"{name}.ext"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN=hfbus test {name}")
        serial = "0x" + os.urandom(8).hex()
        signing = ["-CA", str(ca), "-CAkey", str(ca_key), "-set_serial", serial, "-days", "1"]
        run("x509", "-req", "-in", str(csr), *signing, "-out", str(cert), "-extfile", str(extensions))
        return cert, key

    server_cert, server_key = leaf("server", "serverAuth")
    client_cert, client_key = leaf("client", "clientAuth")
    return TlsFiles(ca, server_cert, server_key, client_cert, client_key)


# ------------------------------------------------------------------------------------------------------- nkeys

Role = int
OPERATOR: Role = nkeys.PREFIX_BYTE_OPERATOR
ACCOUNT: Role = nkeys.PREFIX_BYTE_ACCOUNT
USER: Role = nkeys.PREFIX_BYTE_USER


@dataclass(frozen=True)
class NKey:
    """An nkey pair: the seed (`S...`, the secret) and the public key (`O...`, `A...` or `U...`)."""

    seed: str
    public: str

    def sign(self, data: bytes) -> bytes:
        pair = nkeys.from_seed(bytearray(self.seed.encode()))
        try:
            return bytes(pair.sign(data))
        finally:
            pair.wipe()


def new_nkey(role: Role) -> NKey:
    """A fresh random nkey of `role` (OPERATOR, ACCOUNT or USER)."""
    seed = nkeys.encode_seed(os.urandom(32), role)
    pair = nkeys.from_seed(bytearray(seed))
    public = pair.public_key.decode()
    pair.wipe()
    return NKey(seed.decode(), public)


def write_seed(path: Path, key: NKey) -> Path:
    """The seed alone in a file readable by its owner only, as `NATS_NKEY_SEED` expects."""
    path.write_text(key.seed + "\n")
    path.chmod(0o600)
    return path


# -------------------------------------------------------------------------------------------------------- JWTs

_JWT_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_UNLIMITED = -1


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(issuer: NKey, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A signed nats JWT v2: `iss` is the issuer's public key, `jti` the hash of the claims as nats-io/jwt makes it."""
    claims: dict[str, Any] = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject, "nats": nats}
    unique = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims["jti"] = base64.b32encode(unique).rstrip(b"=").decode()
    signed = _b64url(json.dumps(_JWT_HEADER).encode()) + "." + _b64url(json.dumps(claims).encode())
    return signed + "." + _b64url(issuer.sign(signed.encode()))


def operator_jwt(operator: NKey) -> str:
    """The operator's self-signed JWT: the root of trust the server is configured with."""
    return encode_jwt(operator, operator.public, "hfbus-test-operator", {"type": "operator", "version": 2})


def account_jwt(operator: NKey, account: NKey) -> str:
    """An account signed by the operator, without limits and with JetStream enabled (streams, object store)."""
    limits = {
        key: _UNLIMITED
        for key in ("subs", "data", "payload", "imports", "exports", "conn", "leaf")
        + ("mem_storage", "disk_storage", "streams", "consumer")
    }
    nats = {"type": "account", "version": 2, "limits": {**limits, "wildcards": True}}
    return encode_jwt(operator, account.public, "HFBUS", nats)


def system_account_jwt(operator: NKey, system: NKey) -> str:
    """The system account the server needs for JetStream in operator mode (server events, no JetStream itself)."""
    return encode_jwt(operator, system.public, "SYS", {"type": "account", "version": 2})


def user_jwt(account: NKey, user: NKey) -> str:
    """A user signed by its account, allowed everything the account allows."""
    nats = {
        "type": "user",
        "version": 2,
        "pub": {},
        "sub": {},
        "subs": _UNLIMITED,
        "data": _UNLIMITED,
        "payload": _UNLIMITED,
    }
    return encode_jwt(account, user.public, "hfbus", nats)


def creds_text(jwt: str, user: NKey) -> str:
    """A `.creds` file as `nsc` writes it: the user JWT, then the user's seed."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def write_creds(path: Path, jwt: str, user: NKey) -> Path:
    """A creds file readable by its owner only, as `NATS_CREDS` expects."""
    path.write_text(creds_text(jwt, user))
    path.chmod(0o600)
    return path
