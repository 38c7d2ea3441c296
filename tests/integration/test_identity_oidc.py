"""Sign-in with an identity provider: JWTs checked against a JWKS served on loopback.

The verifier is tested on its own (what it accepts, what it refuses, how it follows key
rotation), then through the app over real HTTP with IMAGETAG_AUTH=oidc and apikey,oidc.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image as PillowImage

from imagetag.adapters.identity_oidc import OidcConfig, OidcTokenVerifier, role_from_claim
from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.errors import AuthenticationFailed
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.entrypoints.container import build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.settings import Settings, SettingsError
from imagetag.services.keys import SYSTEM
from tests.support.jwks import AUDIENCE, ISSUER, JwksServer, SigningKey, claims, running_jwks
from tests.support.servers import ThreadedUvicorn

RSA_KEY = SigningKey.rsa("rsa-1")
EC_KEY = SigningKey.ec("ec-1")
ALICE = Principal(Actor("alice", "labelling-ui"), Role.TAGGER)


class ManualClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with running_jwks([RSA_KEY, EC_KEY]) as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def verifier_for(idp: JwksServer, clock: ManualClock, **options: Any) -> OidcTokenVerifier:
    return OidcTokenVerifier(OidcConfig(ISSUER, AUDIENCE, idp.url), clock=clock, **options)


@pytest.fixture
def verifier(idp: JwksServer, clock: ManualClock) -> OidcTokenVerifier:
    return verifier_for(idp, clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(body).encode()), _b64(signature)]
    )


def hs256_with_public_key(key: SigningKey) -> str:
    """The HS/RS confusion: an HMAC over the token keyed with the provider's public key."""
    secret = key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = _b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def tampered_payload(token: str) -> str:
    header, _body, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(claims(roles=['admin'])).encode())}.{signature}"


def tampered_signature(token: str) -> str:
    header, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[-1] ^= 1
    return f"{header}.{body}.{_b64(bytes(raw))}"


# --- What the verifier accepts ----------------------------------------------------------


@pytest.mark.parametrize("key", [RSA_KEY, EC_KEY], ids=["RS256", "ES256"])
async def test_a_valid_token_gives_its_user_client_and_role(
    verifier: OidcTokenVerifier, key: SigningKey
) -> None:
    assert await verifier.authenticate(key.sign(claims())) == ALICE


@pytest.mark.parametrize(
    ("client_claims", "client"),
    [
        ({"azp": None, "client_id": "notebook"}, "notebook"),
        ({"azp": "labelling-ui", "client_id": "notebook"}, "labelling-ui"),
        ({"azp": None}, "unknown"),
    ],
)
async def test_the_client_is_azp_else_client_id_else_unknown(
    verifier: OidcTokenVerifier, client_claims: dict[str, Any], client: str
) -> None:
    principal = await verifier.authenticate(RSA_KEY.sign(claims(**client_claims)))
    assert principal.actor == Actor("alice", client)


async def test_the_user_and_roles_claims_are_configurable(
    idp: JwksServer, clock: ManualClock
) -> None:
    config = OidcConfig(
        ISSUER, AUDIENCE, idp.url, user_claim="preferred_username", roles_claim="scope"
    )
    verifier = OidcTokenVerifier(config, clock=clock)
    token = RSA_KEY.sign(claims(preferred_username="ada", scope="openid admin profile"))
    assert await verifier.authenticate(token) == Principal(Actor("ada", "labelling-ui"), Role.ADMIN)


@pytest.mark.parametrize(
    ("value", "role"),
    [
        (["tagger", "admin"], Role.ADMIN),
        ("reader tagger", Role.TAGGER),
        (["Admin"], Role.ADMIN),
        (["offline_access", "uma_authorization"], Role.READER),
        ([], Role.READER),
        (None, Role.READER),
        ({"admin": True}, Role.READER),
        ([["admin"], 3], Role.READER),
    ],
)
def test_the_highest_imagetag_role_named_wins_and_none_means_reader(
    value: object, role: Role
) -> None:
    assert role_from_claim(value) == role


async def test_a_token_within_the_leeway_of_its_expiry_is_still_accepted(
    verifier: OidcTokenVerifier,
) -> None:
    now = int(time.time())
    token = RSA_KEY.sign(claims(exp=now - 10, iat=now - 310, nbf=now - 310))
    assert await verifier.authenticate(token) == ALICE


# --- What it refuses --------------------------------------------------------------------


# The provider's kid on someone else's key; a key the provider never published.
STRANGER = SigningKey.rsa("rsa-1")
OUTSIDER = SigningKey.rsa("rsa-404")


def refused_tokens() -> dict[str, str]:
    """Made when a test runs, so that times in them are relative to then."""
    now = int(time.time())
    good = RSA_KEY.sign(claims())
    return {
        "expired": RSA_KEY.sign(claims(exp=now - 60, iat=now - 400, nbf=now - 400)),
        "not yet valid": RSA_KEY.sign(claims(nbf=now + 120)),
        "issued in the future": RSA_KEY.sign(claims(iat=now + 120)),
        "wrong audience": RSA_KEY.sign(claims(aud="another-api")),
        "wrong issuer": RSA_KEY.sign(claims(iss="https://evil.example.test")),
        "no exp": RSA_KEY.sign(claims(exp=None)),
        "no aud": RSA_KEY.sign(claims(aud=None)),
        "no iss": RSA_KEY.sign(claims(iss=None)),
        "no sub": RSA_KEY.sign(claims(sub=None)),
        "unknown kid": OUTSIDER.sign(claims()),
        "no kid": jwt.encode(claims(), RSA_KEY.private, algorithm="RS256"),
        "another key under a known kid": STRANGER.sign(claims()),
        "tampered payload": tampered_payload(good),
        "tampered signature": tampered_signature(good),
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims()),
        "HS256 keyed with the public key": hs256_with_public_key(RSA_KEY),
        "ES256 header on an RSA key": unsigned(
            {"alg": "ES256", "kid": "rsa-1"}, claims(), b"\0" * 64
        ),
        "RS512, not allowed": jwt.encode(
            claims(), RSA_KEY.private, algorithm="RS512", headers={"kid": "rsa-1"}
        ),
        "not a JWT": "this-is-not-a-token",
        "empty segments": "..",
        "too long": RSA_KEY.sign(claims(padding="x" * 20_000)),
    }


@pytest.mark.parametrize("case", list(refused_tokens()))
async def test_a_token_that_is_not_right_in_every_way_is_refused_without_repeating_it(
    verifier: OidcTokenVerifier, case: str
) -> None:
    token = refused_tokens()[case]
    with pytest.raises(AuthenticationFailed) as refused:
        await verifier.authenticate(token)
    message = str(refused.value)
    assert message
    assert token not in message
    assert all(part not in message for part in token.split(".") if len(part) > 8)


async def test_a_refusal_says_why_in_a_few_words(verifier: OidcTokenVerifier) -> None:
    now = int(time.time())
    expired = RSA_KEY.sign(claims(exp=now - 60, iat=now - 400, nbf=now - 400))
    with pytest.raises(AuthenticationFailed, match="expired"):
        await verifier.authenticate(expired)
    with pytest.raises(AuthenticationFailed, match="audience"):
        await verifier.authenticate(RSA_KEY.sign(claims(aud="another-api")))
    with pytest.raises(AuthenticationFailed, match="'exp'"):
        await verifier.authenticate(RSA_KEY.sign(claims(exp=None)))


def test_symmetric_or_no_algorithms_cannot_be_configured() -> None:
    for algorithms in (["HS256"], ["RS256", "none"], []):
        with pytest.raises(ValueError, match="asymmetric"):
            OidcConfig(ISSUER, AUDIENCE, "https://idp.example.test/certs", algorithms=algorithms)


# --- Keys: caching and rotation ---------------------------------------------------------
# The rule: the key set is kept for jwks_cache_seconds; an unknown kid refetches it, at
# most once per refetch_interval_seconds; a removed key is refused from the next fetch on.


async def test_keys_are_fetched_once_and_then_served_from_the_cache(
    verifier: OidcTokenVerifier, idp: JwksServer
) -> None:
    for _ in range(5):
        await verifier.authenticate(RSA_KEY.sign(claims()))
        await verifier.authenticate(EC_KEY.sign(claims()))
    assert idp.fetches == 1


async def test_a_rotated_in_key_is_accepted_without_a_restart(
    verifier: OidcTokenVerifier, idp: JwksServer, clock: ManualClock
) -> None:
    assert await verifier.authenticate(RSA_KEY.sign(claims())) == ALICE
    new_key = SigningKey.rsa("rsa-2")
    idp.serve([new_key])

    clock.now += 10
    assert await verifier.authenticate(new_key.sign(claims())) == ALICE
    assert idp.fetches == 2
    with pytest.raises(AuthenticationFailed, match="signing key"):
        await verifier.authenticate(RSA_KEY.sign(claims()))


async def test_a_new_kid_within_the_refetch_interval_waits_for_the_next_fetch(
    verifier: OidcTokenVerifier, idp: JwksServer, clock: ManualClock
) -> None:
    await verifier.authenticate(RSA_KEY.sign(claims()))
    new_key = SigningKey.ec("ec-2")
    idp.serve([RSA_KEY, new_key])
    clock.now += 9
    with pytest.raises(AuthenticationFailed, match="signing key"):
        await verifier.authenticate(new_key.sign(claims()))
    clock.now += 1
    assert await verifier.authenticate(new_key.sign(claims())) == ALICE


async def test_a_removed_key_is_refused_once_the_cached_key_set_expires(
    verifier: OidcTokenVerifier, idp: JwksServer, clock: ManualClock
) -> None:
    await verifier.authenticate(RSA_KEY.sign(claims()))
    idp.serve([EC_KEY])
    clock.now += 299
    assert await verifier.authenticate(RSA_KEY.sign(claims())) == ALICE
    clock.now += 1
    with pytest.raises(AuthenticationFailed, match="signing key"):
        await verifier.authenticate(RSA_KEY.sign(claims()))
    assert await verifier.authenticate(EC_KEY.sign(claims())) == ALICE
    assert idp.fetches == 2


async def test_made_up_kids_bring_at_most_one_fetch_per_interval(
    verifier: OidcTokenVerifier, idp: JwksServer, clock: ManualClock
) -> None:
    await verifier.authenticate(RSA_KEY.sign(claims()))
    forger = SigningKey.ec("ec-x")
    for n in range(20):
        token = jwt.encode(claims(), forger.private, algorithm="ES256", headers={"kid": f"k{n}"})
        with pytest.raises(AuthenticationFailed):
            await verifier.authenticate(token)
    clock.now += 10
    tokens = [
        jwt.encode(claims(), forger.private, algorithm="ES256", headers={"kid": f"j{n}"})
        for n in range(20)
    ]
    results = await asyncio.gather(
        *(verifier.authenticate(token) for token in tokens), return_exceptions=True
    )
    assert all(isinstance(result, AuthenticationFailed) for result in results)
    assert idp.fetches == 2


async def test_an_unreachable_key_set_refuses_tokens(clock: ManualClock) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    verifier = OidcTokenVerifier(
        OidcConfig(ISSUER, AUDIENCE, f"http://127.0.0.1:{port}/certs"), clock=clock
    )
    with pytest.raises(AuthenticationFailed, match="could not be fetched"):
        await verifier.authenticate(RSA_KEY.sign(claims()))


async def test_a_key_set_that_never_answers_is_given_up_on_in_time(clock: ManualClock) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/certs"
        verifier = OidcTokenVerifier(
            OidcConfig(ISSUER, AUDIENCE, url), fetch_timeout_seconds=0.5, clock=clock
        )
        started = time.monotonic()
        beat = asyncio.create_task(asyncio.sleep(0.1))
        with pytest.raises(AuthenticationFailed, match="could not be fetched"):
            await verifier.authenticate(RSA_KEY.sign(claims()))
        assert time.monotonic() - started < 3
        assert beat.done()  # the loop kept running while the fetch waited


# --- Settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["ISSUER", "AUDIENCE", "JWKS_URL"])
def test_oidc_without_issuer_audience_or_jwks_url_fails_at_start_naming_it(
    missing: str,
) -> None:
    environ = {
        "IMAGETAG_AUTH": "oidc",
        "IMAGETAG_OIDC_ISSUER": ISSUER,
        "IMAGETAG_OIDC_AUDIENCE": AUDIENCE,
        "IMAGETAG_OIDC_JWKS_URL": "https://idp.example.test/certs",
    }
    del environ[f"IMAGETAG_OIDC_{missing}"]
    with pytest.raises(SettingsError, match=f"IMAGETAG_OIDC_{missing}"):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTH", "saml"),
        ("OIDC_ALGORITHMS", "RS256,HS256"),
        ("OIDC_ALGORITHMS", "none"),
        ("OIDC_JWKS_URL", "http://idp.example.test/certs"),
        ("OIDC_JWKS_URL", "file:///etc/passwd"),
        ("OIDC_LEEWAY_SECONDS", "-1"),
    ],
)
def test_unsafe_or_unknown_auth_settings_fail_at_start(name: str, value: str) -> None:
    environ = {
        "IMAGETAG_AUTH": "apikey,oidc",
        "IMAGETAG_OIDC_ISSUER": ISSUER,
        "IMAGETAG_OIDC_AUDIENCE": AUDIENCE,
        "IMAGETAG_OIDC_JWKS_URL": "https://idp.example.test/certs",
        f"IMAGETAG_{name}": value,
    }
    with pytest.raises(SettingsError, match=f"IMAGETAG_{name}"):
        Settings.from_env(environ)


# --- Through the app, over real HTTP ----------------------------------------------------


def _png(n: int) -> str:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (16, 12), (n % 256, 99, 7)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class Served:
    def __init__(self, base_url: str, api_key: str, auth: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.auth = auth
        self.images = 0

    def call(self, method: str, path: str, bearer: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def post_image(self, bearer: str) -> httpx.Response:
        self.images += 1
        return self.call("POST", "/images", bearer, json={"image": _png(self.images)})


@pytest.fixture(scope="module", params=["oidc", "apikey,oidc"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("oidc")
    database_url = f"sqlite+aiosqlite:///{data_dir / 'imagetag.db'}"
    asyncio.run(upgrade_database(database_url))
    with running_jwks([RSA_KEY, EC_KEY]) as idp:
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            detector="opencv",
            auth=request.param,
            oidc_issuer=ISSUER,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=idp.url,
        )
        container = build_container(settings)

        async def issue() -> str:
            issued = await container.keys().create("ci", SYSTEM, role=Role.TAGGER)
            await container.engine().dispose()
            return issued.secret

        api_key = asyncio.run(issue())
        with ThreadedUvicorn(create_app(container)) as server:
            yield Served(server.base_url, api_key, request.param)


def test_over_http_a_missing_or_bad_token_is_a_401_problem(served: Served) -> None:
    now = int(time.time())
    for bearer in [
        None,
        "not-a-jwt",
        RSA_KEY.sign(claims(exp=now - 60, iat=now - 400, nbf=now - 400)),
        RSA_KEY.sign(claims(aud="another-api")),
        hs256_with_public_key(RSA_KEY),
    ]:
        response = served.call("GET", "/images", bearer)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if bearer:
            assert bearer not in response.text


def test_over_http_a_tagger_token_creates_and_tags_and_both_record_user_and_client(
    served: Served,
) -> None:
    token = EC_KEY.sign(claims(sub="carol", azp="notebook", roles="tagger"))
    created = served.post_image(token)
    assert created.status_code == 200, created.text
    image = created.json()
    assert image["created_by"] == {"user": "carol", "client": "notebook"}

    tagged = served.call("POST", f"/images/{image['id']}/tags", token, json={"names": ["cat"]})
    assert tagged.status_code == 200, tagged.text
    tags = served.call("GET", f"/images/{image['id']}/tags", token).json()["tags"]
    assert [(t["name"], t["added_by"]) for t in tags if t["source"] == "human"] == [
        ("cat", {"user": "carol", "client": "notebook"})
    ]


def test_over_http_a_reader_token_reads_but_may_not_write(served: Served) -> None:
    reader = RSA_KEY.sign(claims(sub="rita", roles=["reader"]))
    no_roles = RSA_KEY.sign(claims(sub="nora", roles=None))
    for token in (reader, no_roles):
        assert served.call("GET", "/images", token).status_code == 200
        refused = served.post_image(token)
        assert refused.status_code == 403, refused.text


def test_over_http_api_keys_work_only_when_auth_names_apikey(served: Served) -> None:
    response = served.post_image(served.api_key)
    if served.auth == "apikey,oidc":
        assert response.status_code == 200, response.text
        assert response.json()["created_by"] == {"user": "ci", "client": "ci"}
    else:
        assert response.status_code == 401, response.text
