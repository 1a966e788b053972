"""A small OpenID Connect issuer on loopback: discovery, a JWKS, and tokens signed by it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class IssuerKey:
    """One signing key of the issuer."""

    kid: str
    alg: str  # RS256 or ES256
    private: Any

    @classmethod
    def new(cls, kid: str, alg: str) -> IssuerKey:
        """A fresh RSA (RS256) or P-256 (ES256) key."""
        if alg == "RS256":
            return cls(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return cls(kid, alg, ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK."""
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        )
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


class OidcIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` on 127.0.0.1; counts fetches."""

    def __init__(self, audience: str = "egenvard") -> None:
        self.audience = audience
        self.keys = [IssuerKey.new("rsa-1", "RS256"), IssuerKey.new("ec-1", "ES256")]
        self.published: list[IssuerKey] = list(self.keys)
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.down = False  # answer 500 to everything (an outage)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                if issuer.down:
                    self.send_error(500)
                    return
                if self.path == "/.well-known/openid-configuration":
                    issuer.discovery_fetches += 1
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [key.jwk() for key in issuer.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OidcIssuer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving: the port refuses connections from now on."""
        self.server.shutdown()
        self.server.server_close()

    def key(self, kid: str) -> IssuerKey:
        """A key by its kid."""
        return next(key for key in self.keys if key.kid == kid)

    def rotate(self, new: IssuerKey, *, keep: list[str]) -> None:
        """Publish ``new`` and the keys named in ``keep``; the rest are withdrawn."""
        self.keys.append(new)
        self.published = [key for key in self.keys if key.kid in keep] + [new]

    def token(
        self,
        now: datetime,
        *,
        kid: str = "rsa-1",
        ttl: timedelta = timedelta(minutes=5),
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with the key ``kid`` (``sub`` defaults to "idp-user")."""
        key = self.key(kid)
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": "idp-user",
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(
            body, key.private, algorithm=key.alg, headers={"kid": kid, **(headers or {})}
        )
