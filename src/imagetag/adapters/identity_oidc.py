"""Bearer tokens from an OpenID Connect identity provider: signed JWTs checked with PyJWT.

The provider's public keys come from its JWKS URL and are kept for ``jwks_cache_seconds``.
A token whose ``kid`` is not among them makes the verifier fetch the key set again, at most
once per ``refetch_interval_seconds``, so a rotated-in key works without a restart while
made-up ``kid``s cannot turn requests into a flood of fetches. A key the provider removed
is refused as soon as the key set is fetched again: when the cached set expires or an
unknown ``kid`` brings a refetch. A key set that cannot be fetched refuses every token;
expired keys are never used as a fallback.

``PyJWKClient`` fetches (http(s) only, no redirects, a timeout, signing keys only) but does
not cache here: its per-``kid`` LRU cache (``cache_keys=True``) never expires, so a key
removed from the set would be accepted until evicted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from imagetag.domain.errors import AuthenticationFailed
from imagetag.domain.principals import Actor, Principal, Role

# Asymmetric algorithms only: an HMAC algorithm would verify with the provider's public
# key as the shared secret, which anyone can then sign with (the HS/RS confusion).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("RS256", "ES256")
UNKNOWN_CLIENT = "unknown"
# Far above any real ID or access token; refuses huge headers before any parsing.
MAX_TOKEN_LENGTH = 16 * 1024
_REQUIRED_CLAIMS = ["exp", "iss", "aud"]
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is meant for another audience"),
    (jwt.InvalidIssuerError, "the token comes from another issuer"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
)


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """What a token must say to be accepted, and where its claims put user and role."""

    issuer: str
    audience: str
    jwks_url: str
    user_claim: str = "sub"
    roles_claim: str = "roles"
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS
    leeway_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience or not self.jwks_url:
            raise ValueError("an OIDC issuer, audience and JWKS URL are all needed")
        unsafe = set(self.algorithms) - ASYMMETRIC_ALGORITHMS
        if not self.algorithms or unsafe:
            raise ValueError(f"only asymmetric algorithms may verify tokens, not {sorted(unsafe)}")
        if self.leeway_seconds < 0:
            raise ValueError("the leeway is not negative")


def role_from_claim(value: object) -> Role:
    """The highest imagetag role named in a list or a space-separated string; ``reader``
    when none is (the least a signed-in user may do)."""
    if isinstance(value, str):
        names: Sequence[object] = value.split()
    elif isinstance(value, list):
        names = value
    else:
        return Role.READER
    granted = Role.READER
    for name in names:
        if isinstance(name, str):
            try:
                role = Role(name.casefold())
            except ValueError:
                continue
            if role.allows(granted):
                granted = role
    return granted


class OidcTokenVerifier:
    """Authenticates a bearer JWT issued by an OIDC provider (an ``Authenticator``)."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        jwks_cache_seconds: float = 300.0,
        refetch_interval_seconds: float = 10.0,
        fetch_timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= refetch_interval_seconds <= jwks_cache_seconds:
            raise ValueError("the refetch interval is within 0..the key set's lifespan")
        self._config = config
        self._algorithms = list(config.algorithms)
        self._jwks = jwt.PyJWKClient(
            config.jwks_url,
            cache_keys=False,
            cache_jwk_set=False,
            timeout=fetch_timeout_seconds,
        )
        self._decoder = jwt.PyJWT(
            options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True}
        )
        self._lifespan = jwks_cache_seconds
        self._refetch_interval = refetch_interval_seconds
        self._fetch_timeout = fetch_timeout_seconds
        self._clock = clock
        self._keys: Mapping[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._attempted_at = -float("inf")
        self._refetching = asyncio.Lock()

    async def authenticate(self, bearer: str, /) -> Principal:
        if len(bearer) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("the token is too long")
        try:
            header = jwt.get_unverified_header(bearer)
        except jwt.PyJWTError:
            raise AuthenticationFailed("the bearer credential is not a valid JWT") from None
        if header.get("alg") not in self._algorithms:
            raise AuthenticationFailed("the token's algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed("the token names no signing key ('kid')")
        key = await self._signing_key(kid)
        try:
            claims = self._decoder.decode(
                bearer,
                key,
                algorithms=self._algorithms,
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_seconds,
            )
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationFailed(f"the token has no '{error.claim}' claim") from None
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(_reason(error)) from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        user = claims.get(self._config.user_claim)
        if not isinstance(user, str) or not user:
            raise AuthenticationFailed(f"the token has no '{self._config.user_claim}' claim")
        client = claims.get("azp") or claims.get("client_id")
        try:
            actor = Actor(user, client if isinstance(client, str) else UNKNOWN_CLIENT)
        except ValueError:
            raise AuthenticationFailed("the token's user or client name is not usable") from None
        return Principal(actor, role_from_claim(claims.get(self._config.roles_claim)))

    async def _signing_key(self, kid: str) -> jwt.PyJWK:
        key = self._cached_key(kid)
        if key is None:
            # One refetch at a time; requests that waited see its keys.
            async with self._refetching:
                key = self._cached_key(kid)
                if key is None and self._clock() - self._attempted_at >= self._refetch_interval:
                    await self._refetch()
                    key = self._cached_key(kid)
        if key is None:
            raise AuthenticationFailed("the token's signing key is not the identity provider's")
        return key

    def _cached_key(self, kid: str) -> jwt.PyJWK | None:
        if self._clock() - self._fetched_at >= self._lifespan:
            return None
        return self._keys.get(kid)

    async def _refetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            # Blocking urllib I/O, off the event loop; the socket timeout also ends the thread.
            keys = await asyncio.wait_for(
                asyncio.to_thread(self._jwks.get_signing_keys), self._fetch_timeout
            )
        except (jwt.PyJWTError, OSError, ValueError):
            # OSError covers timeouts and resets; ValueError a body that is not JSON.
            raise AuthenticationFailed(
                "the identity provider's keys could not be fetched"
            ) from None
        self._keys = {
            key.key_id: key
            for key in keys
            if key.key_id is not None and key.algorithm_name in self._algorithms
        }
        self._fetched_at = self._clock()


def _reason(error: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "the token is not a valid JWT"
