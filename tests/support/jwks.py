"""A stand-in identity provider on loopback: signing keys made in the test, their JWKS
served over real HTTP, and tokens signed with them.

The served key set can be changed while the server runs, to rotate keys.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/realms/imagetag"
AUDIENCE = "imagetag-api"


@dataclass(frozen=True)
class SigningKey:
    """A private key, its ``kid`` and algorithm."""

    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **headers}
        )


def claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a good token for ``alice`` via ``labelling-ui``, valid for 5 minutes;
    an override of None leaves the claim out."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "azp": "labelling-ui",
        "roles": ["tagger"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


@dataclass
class JwksServer:
    """The JWKS endpoint; ``keys`` is what it serves, ``fetches`` how often it was asked."""

    url: str
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0

    def serve(self, keys: Sequence[SigningKey]) -> None:
        self.keys = list(keys)


@contextlib.contextmanager
def running_jwks(keys: Sequence[SigningKey]) -> Iterator[JwksServer]:
    """Serve ``keys`` as a JWKS on loopback until the block ends."""
    state = JwksServer(url="", keys=list(keys))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps({"keys": [key.jwk for key in state.keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/protocol/openid-connect/certs"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
