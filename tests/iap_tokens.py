"""Test-signed IAP assertions and the JWK set that verifies them (no network: a file:// URL)."""

from __future__ import annotations

import functools
import http.server
import json
import sys
import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

AUTH_DIR = Path(__file__).resolve().parents[1] / "auth"
if str(AUTH_DIR) not in sys.path:
    sys.path.insert(0, str(AUTH_DIR))

import airflow_gke_iap as iap  # noqa: E402

PROJECT_NUMBER = "123456789012"
AUDIENCE = f"/projects/{PROJECT_NUMBER}/global/backendServices/4242424242"
KID = "test-key-1"


class Signer:
    def __init__(self, kid: str = KID) -> None:
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def token(self, email: str = "ana@example.com", hd: str | None = "example.com", **overrides) -> str:
        now = int(time.time())
        claims = {"iss": iap.IAP_ISSUER, "aud": AUDIENCE, "iat": now - 5, "exp": now + 600,
                  "sub": f"accounts.google.com:{abs(hash(email))}", "email": email}
        if hd:
            claims["hd"] = hd
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


class JwkServer:
    """Serves one JWK set file over loopback HTTP, as www.gstatic.com serves Google's (PyJWKClient takes
    http(s) URLs only). `write` replaces the set (key rotation)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "public_key-jwk"
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/public_key-jwk"

    def write(self, *signers: "Signer") -> str:
        self.path.write_text(json.dumps({"keys": [s.jwk() for s in signers]}))
        return self.url

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def unsigned(claims_from: str) -> str:
    """The same claims with `alg: none` and no signature."""
    claims = jwt.decode(claims_from, options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none", headers={"kid": KID})
