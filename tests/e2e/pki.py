"""A throw-away test PKI made with the openssl command line.

One CA signs the server certificate (used by the driver-facing listeners and by the "remote" sinks, so the
Postfix SMTP client sees a Trusted peer), the client certificate (Trusted at a server that asks for one) and
an ECDSA server certificate (so ECDSA cipher suites occur). A self-signed server certificate and a
self-signed client certificate give the Untrusted cases.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT = 60
DAYS = "7"


@dataclass(frozen=True)
class Pki:
    """Where the certificates live; ``crt("server")`` / ``key("server")`` name a pair."""

    directory: Path

    def crt(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True,
                   timeout=OPENSSL_TIMEOUT)


def _self_signed(d: Path, name: str, subject: str, extensions: list[str], key: list[str]) -> None:
    ext = [a for e in extensions for a in ("-addext", e)]
    _openssl("req", "-x509", "-newkey", *key, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", DAYS, "-subj", subject, *ext, cwd=d)


def _ca_signed(d: Path, name: str, subject: str, extensions: str, key: list[str]) -> None:
    (d / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", *key, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", DAYS, "-extfile", f"{name}.ext", cwd=d)
    (d / f"{name}.csr").unlink()
    (d / f"{name}.ext").unlink()


def make_pki(directory: Path) -> Pki:
    """Create CA, server, client, ECDSA server and the two self-signed pairs in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rsa, ec = ["rsa:2048"], ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    _self_signed(directory, "ca", "/CN=tlslog e2e test CA",
                 ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"], rsa)
    _ca_signed(directory, "server", "/CN=mx.local.test",
               "subjectAltName=DNS:mx.local.test,DNS:sink.test,IP:127.0.0.1,IP:::1\n"
               "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n", rsa)
    _ca_signed(directory, "client", "/CN=client.test",
               "subjectAltName=DNS:client.test\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n", rsa)
    _ca_signed(directory, "ecserver", "/CN=ec.sink.test",
               "subjectAltName=DNS:ec.sink.test,DNS:sink.test\nextendedKeyUsage=serverAuth\n", ec)
    _self_signed(directory, "selfsigned", "/CN=selfsigned.test", ["subjectAltName=DNS:selfsigned.test"], rsa)
    _self_signed(directory, "rogueclient", "/CN=rogue-client.test", ["subjectAltName=DNS:rogue-client.test"], rsa)
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    directory.chmod(0o755)
    return Pki(directory)
