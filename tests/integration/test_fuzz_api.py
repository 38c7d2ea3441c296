"""Schemathesis fuzzes every operation of the live OpenAPI schema on a real server.

Each operation gets a bounded, derandomized batch of generated requests (valid and
invalid), sent with a tagger key, and for the admin endpoints also with an admin key. Every
answer must be a non-5xx whose status code, content type, headers and body the schema
documents. Each schema loads from the running server, so it is the schema clients get.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from PIL import Image as PillowImage
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup

from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.principals import Role
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import SYSTEM
from tests.support.servers import ThreadedUvicorn

# Small enough that the generated bodies quickly hit the limit and exercise the 413.
MAX_UPLOAD = 64 * 1024
ADMIN_PATHS = ("/audit", "/keys")
EXAMPLES_PER_OPERATION = 50
# Schema-valid requests these operations rightly refuse with 400/415/422: their inputs obey
# rules JSON Schema does not state (the check is off for them alone; every other check runs).
RULES_BEYOND_THE_SCHEMA = {
    "GET /images": "ISO 8601 times, name lists, combinations (tags with untagged, ...)",
    "GET /audit": "ISO 8601 times, lists of known event types",
    "POST /images": "the bytes must be an image; the URL must be public and answer one",
    "PATCH /images/{image_id}": "a label is not blank once trimmed",
    "POST /images/{image_id}/tags": "tag names: no commas, normalised, 1-100 of them",
    "POST /keys": "key names: 1-64 of letters, digits, _ . @ -; roles",
}


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    tagger: str
    admin: str
    seeded_image_id: int


async def _issue_keys(container: Container) -> tuple[str, str]:
    tagger = await container.keys().create("fuzz-tagger", SYSTEM, role=Role.TAGGER)
    admin = await container.keys().create("fuzz-admin", SYSTEM, role=Role.ADMIN)
    await container.engine().dispose()
    return tagger.secret, admin.secret


def _png() -> str:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (16, 12), (200, 40, 7)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        data_dir=data_dir,
        detector="opencv",
        max_upload_bytes=MAX_UPLOAD,
        # Generated URLs are refused before any connection: the test needs no network.
        fetch_allow_private=False,
        # Thousands of requests from one user in a minute: a limit would answer most with 429.
        rate_limit_per_minute=0,
    )
    asyncio.run(upgrade_database(config.database_url))
    container = build_container(config)
    tagger, admin = asyncio.run(_issue_keys(container))
    with ThreadedUvicorn(create_app(container)) as server:
        seeded = httpx.post(
            f"{server.base_url}/images",
            json={"image": _png()},
            headers={"Authorization": f"Bearer {tagger}"},
            timeout=30,
        )
        assert seeded.status_code == 200, seeded.text
        yield LiveApi(server.base_url, tagger, admin, seeded.json()["id"])


@pytest.fixture(scope="module")
def live_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        # Like most HTTP APIs, this one ignores query parameters it does not know.
        {"generation": {"allow-extra-parameters": False}}
    )
    return schemathesis.openapi.from_url(f"{live_api.base_url}/schema/openapi.json", config=config)


def _operations(
    schema: schemathesis.BaseSchema,
) -> list[schemathesis.APIOperation[Any, Any, Any, Any]]:
    # A schema error (an Err, which has no ok()) fails the test, as it should.
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def _fuzz(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], base_url: str, secret: str
) -> list[str]:
    """Every failure of one operation, in each generation mode (empty when it passes)."""
    failures = []
    excluded = [positive_data_acceptance] if operation.label in RULES_BEYOND_THE_SCHEMA else []
    for mode in GenerationMode:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
        )
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=base_url,
                headers={"Authorization": f"Bearer {secret}"},
                excluded_checks=excluded,
                timeout=30,
            )

        try:
            call()
        except Unsatisfiable:
            # Nothing to get wrong: no parameters, no body, no key needed (GET /health).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (AssertionError, FailureGroup) as failure:
            failures.append(f"{operation.label} ({mode.value}): {failure}")
    return failures


def test_every_operation_answers_as_documented_to_a_tagger(
    live_api: LiveApi, live_schema: schemathesis.BaseSchema
) -> None:
    operations = _operations(live_schema)
    assert len(operations) >= 16
    failures = [
        failure
        for operation in operations
        for failure in _fuzz(operation, live_api.base_url, live_api.tagger)
    ]
    assert not failures, "\n\n".join(failures)


def test_admin_operations_answer_as_documented_to_an_admin(
    live_api: LiveApi, live_schema: schemathesis.BaseSchema
) -> None:
    operations = [op for op in _operations(live_schema) if op.path.startswith(ADMIN_PATHS)]
    assert len(operations) == 4
    failures = [
        failure
        for operation in operations
        for failure in _fuzz(operation, live_api.base_url, live_api.admin)
    ]
    assert not failures, "\n\n".join(failures)
