"""One settings object, read from ``IMAGETAG_*`` environment variables and checked at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imagetag.adapters.detectors.imagga_http import DEFAULT_URL as IMAGGA_DEFAULT_URL
from imagetag.adapters.identity_oidc import ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS
from imagetag.adapters.image_inspector_pillow import DEFAULT_FORMATS
from imagetag.adapters.sqla.engine import normalise_database_url, sqlite_url
from imagetag.domain.idempotency import DuplicatePolicy

PREFIX = "IMAGETAG_"
DETECTOR_KINDS = ("auto", "yolo", "yolo-onnx", "opencv", "imagga")
AUTH_METHODS = ("apikey", "oidc")
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
MIB = 1024 * 1024
# A URL scheme, so that a path is told from a URL of a store we do not have.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# S3's bucket naming rules (general purpose buckets): 3-63 lower-case letters, digits,
# dots and hyphens, a letter or digit at both ends.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[A-Za-z0-9_-]{1,64}")
BLOBS_EXPECTATION = "a directory or s3://bucket[/prefix]"


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where ``IMAGETAG_BLOBS=s3://bucket/prefix`` keeps blobs; ``prefix`` has no slashes
    at either end and may be empty."""

    bucket: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a deployment. Field ``x`` is read from ``IMAGETAG_X``."""

    data_dir: Path = Path(".imagetag")
    database_url: str = ""
    # Empty: the data dir's blobs/ on disk; a directory; or s3://bucket[/prefix].
    blobs: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    detector: str = "auto"
    yolo_model: str = "yolo11n.pt"
    yolo_allow_download: bool = False
    detect_confidence: float = 0.25
    detect_iou: float = 0.7
    # Kept out of repr: a logged Settings must not carry the credentials.
    imagga_key: str = field(default="", repr=False)
    imagga_secret: str = field(default="", repr=False)
    imagga_url: str = IMAGGA_DEFAULT_URL
    imagga_threshold: float = 30.0
    imagga_limit: int = 20
    imagga_timeout_seconds: float = 10.0
    imagga_retries: int = 2
    imagga_backoff_seconds: float = 0.5
    max_upload_bytes: int = 20 * MIB
    max_image_pixels: int = 64_000_000
    fetch_timeout_seconds: float = 10.0
    fetch_max_redirects: int = 3
    fetch_allow_private: bool = False
    auth_cache_seconds: float = 10.0
    # apikey, oidc, or both (apikey,oidc): bearers starting itk_ are API keys, others JWTs.
    auth: str = "apikey"
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_user_claim: str = "sub"
    oidc_roles_claim: str = "roles"
    oidc_algorithms: str = ",".join(DEFAULT_ALGORITHMS)
    oidc_leeway_seconds: float = 30.0
    duplicates: str = "new"
    image_formats: str = ",".join(DEFAULT_FORMATS)
    detect_timeout_seconds: float = 120.0
    # 20 MiB in 120 s is 1.4 Mbit/s: slower clients should send smaller images.
    body_timeout_seconds: float = 120.0
    rate_limit_per_minute: int = 1200
    rate_limit_burst: int = 200
    cors_origins: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        data_dir = self.data_dir.expanduser()
        object.__setattr__(self, "data_dir", data_dir)
        url = self.database_url or sqlite_url(data_dir.resolve() / "imagetag.db")
        try:
            object.__setattr__(self, "database_url", normalise_database_url(url))
        except Exception as error:
            raise SettingsError(f"IMAGETAG_DATABASE_URL is not usable: {error}") from None
        self._check_blobs()
        _require(self.detector in DETECTOR_KINDS, "DETECTOR", f"one of {', '.join(DETECTOR_KINDS)}")
        _require(1 <= self.port <= 65535, "PORT", "a TCP port (1-65535)")
        _require(0.0 <= self.detect_confidence <= 1.0, "DETECT_CONFIDENCE", "within 0..1")
        _require(0.0 < self.detect_iou <= 1.0, "DETECT_IOU", "within 0..1")
        self._check_imagga()
        _require(self.max_upload_bytes >= 1024, "MAX_UPLOAD_BYTES", "at least 1024")
        _require(self.max_image_pixels >= 1, "MAX_IMAGE_PIXELS", "positive")
        _require(self.fetch_timeout_seconds > 0, "FETCH_TIMEOUT_SECONDS", "positive")
        _require(0 <= self.auth_cache_seconds <= 3600, "AUTH_CACHE_SECONDS", "within 0..3600")
        self._check_auth()
        _require(0 <= self.fetch_max_redirects <= 10, "FETCH_MAX_REDIRECTS", "within 0..10")
        policies = tuple(policy.value for policy in DuplicatePolicy)
        _require(self.duplicates in policies, "DUPLICATES", f"one of {', '.join(policies)}")
        unknown = sorted(set(self.image_format_names) - set(DEFAULT_FORMATS))
        _require(
            bool(self.image_format_names) and not unknown,
            "IMAGE_FORMATS",
            f"a comma-separated list of {', '.join(DEFAULT_FORMATS)}",
        )
        _require(self.detect_timeout_seconds > 0, "DETECT_TIMEOUT_SECONDS", "positive")
        _require(self.body_timeout_seconds > 0, "BODY_TIMEOUT_SECONDS", "positive")
        _require(self.rate_limit_per_minute >= 0, "RATE_LIMIT_PER_MINUTE", "0 (off) or more")
        _require(self.rate_limit_burst >= 1, "RATE_LIMIT_BURST", "at least 1")
        for origin in self.cors_origin_list:
            _require(
                origin == "*" or origin.startswith(("http://", "https://")),
                "CORS_ORIGINS",
                "a comma-separated list of origins such as https://labelling.example.com",
            )
        levels = ("critical", "error", "warning", "info", "debug")
        _require(self.log_level in levels, "LOG_LEVEL", f"one of {', '.join(levels)}")

    def _check_blobs(self) -> None:
        blobs = self.blobs.strip()
        object.__setattr__(self, "blobs", blobs)
        _s3_location(blobs)
        _require(
            not self.s3_endpoint_url or _is_endpoint(self.s3_endpoint_url),
            "S3_ENDPOINT_URL",
            "an http(s)://host[:port] URL, without credentials (those go in AWS_*)",
        )
        _require(
            not self.s3_region or bool(_REGION.fullmatch(self.s3_region)),
            "S3_REGION",
            "a region name such as eu-west-1",
        )

    def _check_imagga(self) -> None:
        if self.detector == "imagga":
            for name in ("IMAGGA_KEY", "IMAGGA_SECRET"):
                _require(
                    bool(getattr(self, name.lower())),
                    name,
                    "set when IMAGETAG_DETECTOR=imagga (see Imagga's dashboard)",
                )
        url = urlsplit(self.imagga_url)
        _require(
            url.scheme in ("http", "https") and bool(url.hostname),
            "IMAGGA_URL",
            "an http(s)://host[:port] URL",
        )
        _require(0.0 <= self.imagga_threshold <= 100.0, "IMAGGA_THRESHOLD", "within 0..100")
        _require(1 <= self.imagga_limit <= 1000, "IMAGGA_LIMIT", "within 1..1000")
        _require(self.imagga_timeout_seconds > 0, "IMAGGA_TIMEOUT_SECONDS", "positive")
        _require(0 <= self.imagga_retries <= 10, "IMAGGA_RETRIES", "within 0..10")
        _require(0.0 <= self.imagga_backoff_seconds <= 60, "IMAGGA_BACKOFF_SECONDS", "within 0..60")

    def _check_auth(self) -> None:
        _require(
            bool(self.auth_methods) and set(self.auth_methods) <= set(AUTH_METHODS),
            "AUTH",
            "apikey, oidc, or apikey,oidc",
        )
        object.__setattr__(self, "auth", ",".join(self.auth_methods))
        if "oidc" not in self.auth_methods:
            return
        for name in ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL"):
            _require(bool(getattr(self, name.lower())), name, "set when IMAGETAG_AUTH has oidc")
        _require(
            _is_trusted_key_url(self.oidc_jwks_url),
            "OIDC_JWKS_URL",
            "an https:// URL (http:// only on loopback), without credentials",
        )
        _require(bool(self.oidc_user_claim), "OIDC_USER_CLAIM", "a claim name")
        _require(bool(self.oidc_roles_claim), "OIDC_ROLES_CLAIM", "a claim name")
        algorithms = self.oidc_algorithm_names
        _require(
            bool(algorithms) and set(algorithms) <= ASYMMETRIC_ALGORITHMS,
            "OIDC_ALGORITHMS",
            f"a comma-separated list of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))} "
            "(never none or HS*)",
        )
        _require(0 <= self.oidc_leeway_seconds <= 300, "OIDC_LEEWAY_SECONDS", "within 0..300")

    @property
    def auth_methods(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(
                method.strip().casefold() for method in self.auth.split(",") if method.strip()
            )
        )

    @property
    def oidc_algorithm_names(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(name.strip() for name in self.oidc_algorithms.split(",") if name.strip())
        )

    @property
    def image_format_names(self) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(
                name.strip().upper() for name in self.image_formats.split(",") if name.strip()
            )
        )

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(origin.strip() for origin in self.cors_origins.split(",") if origin.strip())

    @property
    def blobs_dir(self) -> Path:
        """The directory of the disk blob store: ``IMAGETAG_BLOBS`` when it is a path,
        else the data dir's ``blobs/``."""
        if self.blobs and not _SCHEME.match(self.blobs):
            return Path(self.blobs).expanduser()
        return self.data_dir / "blobs"

    @property
    def blobs_s3(self) -> S3Location | None:
        """The bucket and prefix when ``IMAGETAG_BLOBS`` is an ``s3://`` URL, else None."""
        return _s3_location(self.blobs)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def ultralytics_config_dir(self) -> Path:
        return self.data_dir / "ultralytics"

    @property
    def database_backend(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def uses_default_database(self) -> bool:
        return self.database_url == normalise_database_url(
            sqlite_url(self.data_dir.resolve() / "imagetag.db")
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings; a value that does not parse fails here, naming its variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            variable = PREFIX + spec.name.upper()
            if spec.name in overrides and overrides[spec.name] is not None:
                values[spec.name] = overrides[spec.name]
            elif variable in environ:
                values[spec.name] = _parse(variable, environ[variable], spec.type)
        return cls(**values)


def _s3_location(blobs: str) -> S3Location | None:
    scheme = _SCHEME.match(blobs)
    if scheme is None:
        return None
    _require(
        scheme.group(1).casefold() == "s3",
        "BLOBS",
        f"{BLOBS_EXPECTATION}; got the scheme {scheme.group(1)!r}",
    )
    url = urlsplit(blobs)
    _require(
        bool(_BUCKET.fullmatch(url.netloc)) and ".." not in url.netloc,
        "BLOBS",
        f"{BLOBS_EXPECTATION} with a bucket name of 3-63 a-z 0-9 . -; got {url.netloc!r}",
    )
    prefix = url.path.strip("/")
    _require(
        not (url.query or url.fragment)
        and (not prefix or all(part not in ("", ".", "..") for part in prefix.split("/"))),
        "BLOBS",
        f"{BLOBS_EXPECTATION} whose prefix has no empty, '.' or '..' part, query or fragment",
    )
    return S3Location(url.netloc, prefix)


def _is_endpoint(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.username or parts.password or parts.query or parts.fragment)
    )


def _is_trusted_key_url(url: str) -> bool:
    """Keys fetched over plain HTTP could be swapped on the way: HTTPS, but for loopback."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    host = (parts.hostname or "").casefold()
    return (
        bool(host)
        and (parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS))
        and not (parts.username or parts.password or parts.fragment)
    )


def _require(condition: bool, name: str, expectation: str) -> None:
    if not condition:
        raise SettingsError(f"{PREFIX}{name} must be {expectation}")


def _parse(variable: str, raw: str, kind: Any) -> Any:
    text = raw.strip()
    kind = str(kind)
    try:
        if kind == "bool":
            lowered = text.casefold()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "Path":
            return Path(text)
    except ValueError:
        raise SettingsError(f"{variable}={raw!r} is not a valid {kind}") from None
    return text.casefold() if variable.endswith(("DETECTOR", "LOG_LEVEL")) else text
