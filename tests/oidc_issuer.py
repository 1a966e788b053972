"""A small OpenID Connect issuer on loopback: discovery, a JWKS, tokens signed by it, and the
authorization code flow with PKCE (``/authorize`` approves at once as ``next_subject``;
``/token`` checks the client, the redirect URI and the code verifier, and answers an ID token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

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


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier: base64url(SHA-256), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class Grant:
    """An authorization code the issuer handed out, and what it was bound to."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    subject: str


@dataclass
class Clients:
    """The registered client, and what the issuer saw of the code flow."""

    client_id: str = "egenvard-web"
    client_secret: str | None = None  # None: a public client (PKCE only)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)  # the error of each refused one
    grants: dict[str, Grant] = field(default_factory=dict)


class OidcIssuer:
    """Serves discovery, ``/jwks``, ``/authorize`` and ``/token`` on 127.0.0.1; counts fetches."""

    def __init__(self, audience: str = "egenvard") -> None:
        self.audience = audience
        self.keys = [IssuerKey.new("rsa-1", "RS256"), IssuerKey.new("ec-1", "ES256")]
        self.published: list[IssuerKey] = list(self.keys)
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.down = False  # answer 500 to everything (an outage)
        self.clients = Clients()
        # Who /authorize approves as (None: the user cancels, error=access_denied), and
        # changes to the next ID token's claims (None removes a claim): to test refusals.
        self.next_subject: str | None = "idp-user"
        self.id_token_claims: dict[str, Any] = {}
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                if issuer.down:
                    self.send_error(500)
                    return
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    issuer.discovery_fetches += 1
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + "/jwks",
                        "authorization_endpoint": issuer.url + "/authorize",
                        "token_endpoint": issuer.url + "/token",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                    }
                elif path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [key.jwk() for key in issuer.published]}
                elif path == "/authorize":
                    status, location = issuer.authorize(dict(parse_qsl(query)))
                    self.send_response(status)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                else:
                    self.send_error(404)
                    return
                self._json(200, body)

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                if issuer.down:
                    self.send_error(500)
                    return
                if self.path != "/token":
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                status, body = issuer.exchange(form, self.headers.get("Authorization"))
                self._json(status, body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
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

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Record an authorization request and approve it as ``next_subject`` (a redirect)."""
        clients = self.clients
        clients.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != clients.client_id or not redirect_uri:
            return 400, ""
        answer: dict[str, str] = {"state": query["state"]} if "state" in query else {}
        if query.get("response_type") != "code" or not query.get("code_challenge"):
            answer["error"] = "invalid_request"
        elif self.next_subject is None:
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            clients.grants[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                code_challenge_method=query.get("code_challenge_method", "plain"),
                nonce=query.get("nonce"),
                subject=self.next_subject,
            )
            answer["code"] = code
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return 302, redirect_uri + separator + urlencode(answer)

    def exchange(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """The token endpoint: a code once, for its client, redirect URI and code verifier."""
        clients = self.clients
        clients.token_requests.append(form)
        client_id = form.get("client_id")
        if authorization and authorization.startswith("Basic "):
            pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, secret = pair.partition(":")
            if secret != clients.client_secret:
                return self._refuse("invalid_client", 401)
        elif clients.client_secret is not None:
            return self._refuse("invalid_client", 401)
        grant = clients.grants.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._refuse("invalid_grant")
        verifier = form.get("code_verifier", "")
        if (
            client_id != grant.client_id
            or form.get("redirect_uri") != grant.redirect_uri
            or grant.code_challenge_method != "S256"
            or s256(verifier) != grant.code_challenge
        ):
            return self._refuse("invalid_grant")
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "sub": grant.subject,
            "nonce": grant.nonce,
        }
        id_token = self.token(self.now(), **{**claims, **self.id_token_claims})
        body = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                "expires_in": 300, "id_token": id_token}  # fmt: skip
        return 200, body

    def _refuse(self, error: str, status: int = 400) -> tuple[int, dict[str, Any]]:
        self.clients.token_refusals.append(error)
        return status, {"error": error}

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
