"""A lean way to run a hot GET handler: its own function, without Litestar's per-request kit.

``GET /images/{id}`` is the API's hot read (bench/read). For each call Litestar builds a
``Request``, resolves dependencies through their signature models, validates the handler's
arguments, then wraps the result in a ``Response`` and an ``ASGIResponse``: a third of the
request's CPU in process (bench/read/profile_app.py). This middleware, put on one route
handler, calls the handler's function itself with the path parameters Litestar's router has
already parsed and converted and with its (parameterless) dependencies, encodes the result
with Litestar's own JSON encoder, and sends it with the headers Litestar would send
(``content-type``, ``content-length``).

Everything else stays Litestar's: routing, the app's middleware (the API key check runs
before this), the exception handlers (so errors keep their problem+json bodies) and the
OpenAPI schema, built from the handler's declaration. A handler that uses anything this
does not reproduce (guards, hooks, response headers or cookies, DTOs, caching, a status
other than 200, validated path parameters, dependencies with parameters) runs the ordinary
way; ``lean_call`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.response import Response
from litestar.serialization import encode_json, get_serializer
from litestar.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

# Validation a path parameter can declare; the router converts the value but does not check
# these, the signature model does.
_CONSTRAINTS = (
    "gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern", "const",
    "lower_case", "upper_case", "enum",
)  # fmt: skip
_JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class LeanCall:
    """How to call a handler's function directly: its dependencies' providers by name."""

    function: Callable[..., Awaitable[Any]]
    providers: Mapping[str, Callable[[], Any]]
    serializer: Callable[[Any], Any]

    async def body(self, path_params: Mapping[str, Any]) -> bytes:
        arguments = {name: provide() for name, provide in self.providers.items()}
        return encode_json(await self.function(**path_params, **arguments), self.serializer)


def lean_call(handler: HTTPRouteHandler, path_params: Mapping[str, Any]) -> LeanCall | str:
    """A direct call of the registered ``handler`` given these path parameters, or why the
    handler must run the ordinary way."""
    if handler.http_methods != {"GET"} or handler.status_code != 200:
        return "only GET handlers answering 200 run lean"
    if handler.has_sync_callable or handler.media_type != _JSON.decode():
        return "the handler must be async and answer application/json"
    if (
        handler.resolve_guards()
        or handler.resolve_before_request()
        or any(getattr(layer, "after_request", None) for layer in handler.ownership_layers)
        or handler.resolve_after_response()
        or handler.resolve_response_headers()
        or handler.resolve_response_cookies()
        or handler.resolve_return_dto()
        or handler.background
        or handler.cache
        or handler.resolve_response_class() is not Response
    ):
        return "it uses guards, hooks, response headers or cookies, a DTO, a task or a cache"
    returned = handler.parsed_fn_signature.return_type.annotation
    if not (isinstance(returned, type) and issubclass(returned, msgspec.Struct)):
        return "the handler must return a msgspec Struct"
    dependencies = handler.resolve_dependencies()
    providers: dict[str, Callable[[], Any]] = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in path_params:
            kwarg = field.kwarg_definition
            if type(path_params[name]) is not field.annotation or any(
                getattr(kwarg, constraint, None) is not None for constraint in _CONSTRAINTS
            ):
                return f"path parameter {name!r} needs the signature model"
            continue
        provider = dependencies.get(name)
        if (
            provider is None
            or not provider.has_sync_callable
            or provider.has_sync_generator_dependency
            or provider.use_cache
            or provider.parsed_fn_signature.parameters
        ):
            return f"parameter {name!r} is not a path parameter or a plain dependency"
        providers[name] = provider.dependency
    return LeanCall(
        function=handler.fn,
        providers=providers,
        serializer=get_serializer(handler.resolve_type_encoders()),
    )


def lean_get(app: ASGIApp) -> ASGIApp:
    """Middleware for one GET route handler: run it lean when ``lean_call`` allows."""
    plan: LeanCall | str | None = None

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal plan
        if plan is None:
            handler = scope["route_handler"]
            assert isinstance(handler, HTTPRouteHandler), "mounted on an HTTP route handler"
            plan = lean_call(handler, scope["path_params"])
            if isinstance(plan, str):
                logger.warning("%s runs the ordinary way: %s", handler, plan)
        if isinstance(plan, str):
            await app(scope, receive, send)
            return
        body = await plan.body(scope["path_params"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", _JSON),
                    (b"content-length", str(len(body)).encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return run
