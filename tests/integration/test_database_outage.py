"""A PostgreSQL outage under a running API: 503 while it lasts, then service again with no
restart of the API, and nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import httpx
from PIL import Image as PillowImage

from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.principals import Role
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import SYSTEM
from tests.support.postgres import running_cluster, start_cluster, stop_cluster
from tests.support.servers import ThreadedUvicorn


def png(shade: int) -> str:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (8, 8), (shade, 0, 0)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _tagger_key(container: Container) -> str:
    issued = await container.keys().create("tester", SYSTEM, role=Role.TAGGER)
    # The pool's connections belong to this event loop; the server runs its own.
    await container.engine().dispose()
    return issued.secret


def test_the_api_answers_503_during_a_database_outage_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    with running_cluster() as url:
        asyncio.run(upgrade_database(url))
        settings = Settings(data_dir=tmp_path, database_url=url, detector="opencv")
        container = build_container(settings)
        secret = asyncio.run(_tagger_key(container))
        with (
            ThreadedUvicorn(create_app(container)) as server,
            httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=30,
            ) as client,
        ):
            before = client.post("/images", json={"image": png(1)})
            assert before.status_code == 200, before.text

            stop_cluster(url)
            during = [client.get("/images"), client.post("/images", json={"image": png(2)})]
            for response in during:
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
                assert response.headers["content-type"].startswith("application/problem+json")
                assert "unavailable" in response.json()["detail"]
                assert "asyncpg" not in response.text, "no internals in the answer"

            start_cluster(url)
            after = client.post("/images", json={"image": png(3)})
            assert after.status_code == 200, after.text
            listed = client.get("/images").json()["images"]
            assert {image["id"] for image in listed} == {before.json()["id"], after.json()["id"]}
