"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Middleware

from imagetag import __version__
from imagetag.domain.errors import ImagetagError
from imagetag.entrypoints.container import (
    Container,
    build_container,
    close_container,
    warm_up_detector,
)
from imagetag.entrypoints.http import (
    routes_audit,
    routes_health,
    routes_images,
    routes_keys,
    routes_tags,
)
from imagetag.entrypoints.http.auth import bearer_authentication
from imagetag.entrypoints.http.body_deadline import BODY_TIMEOUT_STATE
from imagetag.entrypoints.http.dependencies import dependencies_for
from imagetag.entrypoints.http.hot_read import HotRead, ImagetagApp
from imagetag.entrypoints.http.problems import (
    domain_error_handler,
    http_exception_handler,
    internal_error_handler,
    storage_error_handler,
)
from imagetag.entrypoints.http.rate_limit import RateLimiter, rate_limiting
from imagetag.entrypoints.http.security_headers import add_security_headers
from imagetag.entrypoints.settings import Settings

logger = logging.getLogger(__name__)

# A base64 JSON body is 4/3 the size of the image, plus the other fields.
_BODY_OVERHEAD = 64 * 1024


def _middleware(container: Container, limiter: RateLimiter | None) -> list[Middleware]:
    """The credential check, then the caller's rate."""
    chain: list[Middleware] = [bearer_authentication(container.authenticator())]
    if limiter is not None:
        chain.append(rate_limiting(limiter))
    return chain


def create_app(container: Container | None = None) -> Litestar:
    """Build the API over ``container`` (by default one built from the environment)."""
    container = container or build_container(Settings.from_env())
    settings: Settings = container.settings()
    # One limiter for the middleware and the hot read, so each request counts once.
    limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute
        else None
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        detector = container.detector()
        info = detector.info
        logger.info("imagetag %s: detector %s (%s)", __version__, info.detector, info.model)
        # Load the model in the background so the first detection does not pay for it.
        warming = asyncio.create_task(warm_up_detector(container))
        try:
            yield
        finally:
            warming.cancel()
            await close_container(container)

    app = ImagetagApp(
        route_handlers=[
            routes_health.health,
            routes_images.create_image,
            routes_images.list_images,
            # The hot read; its plain success is answered in front of Litestar (hot_read).
            routes_images.get_image,
            routes_images.update_image,
            routes_images.delete_image,
            routes_images.detect_again,
            routes_images.get_image_content,
            routes_tags.list_image_tags,
            routes_tags.add_image_tags,
            routes_tags.remove_image_tag,
            routes_tags.list_tags,
            routes_audit.list_audit_events,
            routes_keys.list_keys,
            routes_keys.create_key,
            routes_keys.revoke_key,
        ],
        dependencies=dependencies_for(container),
        middleware=_middleware(container, limiter),
        cors_config=(
            CORSConfig(
                allow_origins=list(settings.cors_origin_list),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            )
            if settings.cors_origin_list
            else None
        ),
        exception_handlers={
            ImagetagError: domain_error_handler,
            HTTPException: http_exception_handler,
            OSError: storage_error_handler,
            Exception: internal_error_handler,
        },
        before_send=[add_security_headers],
        state=State({"container": container, BODY_TIMEOUT_STATE: settings.body_timeout_seconds}),
        lifespan=[lifespan],
        request_max_body_size=settings.max_upload_bytes * 4 // 3 + _BODY_OVERHEAD,
        openapi_config=OpenAPIConfig(
            title="imagetag",
            version=__version__,
            description=(
                "Ingest images, detect the objects in them and find them again. "
                "Every endpoint but /health and /schema needs 'Authorization: Bearer <api key>' "
                "or, when sign-in with an identity provider is on, 'Bearer <token>'."
            ),
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An imagetag API key, or an OIDC access token (a JWT)",
                    )
                }
            ),
            security=[{"apiKey": []}],
        ),
        # Logging is the host's to configure (serve sets it up; embedding apps keep theirs).
        logging_config=None,
        debug=False,
    )
    app.hot_read = HotRead(
        authenticator=container.authenticator, images=container.images, limiter=limiter
    )
    return app
