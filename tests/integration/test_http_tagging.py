"""Tagging over real HTTP: who did what, roles, the audit log and search by provenance.

One server per database backend (SQLite and a real PostgreSQL), four keys: two taggers
on different clients, a reader and an admin.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image as PillowImage

from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.principals import Role
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import SYSTEM
from tests.integration.conftest import fresh_postgres_database
from tests.support.assets import ZIDANE
from tests.support.servers import ThreadedUvicorn

KEYS = {
    "alice": ("alice", "labelling-ui", Role.TAGGER),
    "bob": ("bob", "notebook", Role.TAGGER),
    "rita": ("rita", "dashboard", Role.READER),
    "ada": ("ada", "console", Role.ADMIN),
}


@dataclass
class Api:
    clients: dict[str, httpx.Client]

    def __getattr__(self, name: str) -> httpx.Client:
        return self.clients[name]


async def _issue_keys(container: Container) -> dict[str, str]:
    secrets = {}
    for name, (user, client, role) in KEYS.items():
        issued = await container.keys().create(name, SYSTEM, user=user, client=client, role=role)
        secrets[name] = issued.secret
    await container.engine().dispose()
    return secrets


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("tagging")
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{data_dir / 'imagetag.db'}"
    else:
        admin_url = request.getfixturevalue("postgres_admin_url")
        database_url = asyncio.run(fresh_postgres_database(admin_url))
    settings = Settings(data_dir=data_dir, database_url=database_url, detector="opencv")
    asyncio.run(upgrade_database(database_url))
    container = build_container(settings)
    secrets = asyncio.run(_issue_keys(container))
    with ThreadedUvicorn(create_app(container)) as server:
        clients = {
            name: httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=60,
            )
            for name, secret in secrets.items()
        }
        yield Api(clients)
        for client in clients.values():
            client.close()


def new_image(api: Api, who: str = "alice", **fields: Any) -> dict[str, Any]:
    """A small PNG of its own (a fresh colour each time, so no two share bytes)."""
    new_image.counter = getattr(new_image, "counter", 0) + 1  # type: ignore[attr-defined]
    n = new_image.counter  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    PillowImage.new("RGB", (16, 12), (n % 256, n // 256 % 256, 7)).save(buffer, "PNG")
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), **fields}
    response = api.clients[who].post("/images", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [image["id"] for image in response.json()["images"]]


def test_two_principals_tag_one_image_and_each_tag_says_who_when_and_how(api: Api) -> None:
    image = new_image(api)
    by_alice = api.alice.post(f"/images/{image['id']}/tags", json={"names": ["Cat", " indoor "]})
    assert by_alice.status_code == 200, by_alice.text
    by_bob = api.bob.post(f"/images/{image['id']}/tags", json={"names": ["cat", "sofa"]})
    assert by_bob.status_code == 200, by_bob.text

    tags = api.rita.get(f"/images/{image['id']}/tags").json()["tags"]
    seen = [(t["name"], t["source"], t["added_by"]["user"], t["added_by"]["client"]) for t in tags]
    assert seen == [
        ("cat", "human", "alice", "labelling-ui"),
        ("indoor", "human", "alice", "labelling-ui"),
        ("cat", "human", "bob", "notebook"),
        ("sofa", "human", "bob", "notebook"),
    ]
    assert all(t["confidence"] is None and t["model"] is None for t in tags)
    alice_time = datetime.fromisoformat(tags[0]["added_at"])
    bob_time = datetime.fromisoformat(tags[2]["added_at"])
    assert alice_time <= bob_time

    events = api.ada.get("/audit", params={"image_id": image["id"]}).json()["events"]
    told = [(e["type"], e["actor"]["user"], e["actor"]["client"], e["target"]) for e in events]
    assert told == [
        ("tag.added", "bob", "notebook", "tag:sofa"),
        ("tag.added", "bob", "notebook", "tag:cat"),
        ("tag.added", "alice", "labelling-ui", "tag:indoor"),
        ("tag.added", "alice", "labelling-ui", "tag:cat"),
        ("image.created", "alice", "labelling-ui", f"image:{image['id']}"),
    ]
    assert datetime.fromisoformat(events[0]["occurred_at"]) == bob_time


def test_adding_a_tag_again_changes_nothing(api: Api) -> None:
    image = new_image(api)
    first = api.alice.post(f"/images/{image['id']}/tags", json={"names": ["dog"]}).json()
    again = api.alice.post(f"/images/{image['id']}/tags", json={"names": ["DOG"]}).json()
    assert again == first
    events = api.ada.get("/audit", params={"image_id": image["id"], "type": "tag.added"})
    assert len(events.json()["events"]) == 1


def test_removing_a_tag_is_audited_and_the_image_leaves_the_search(api: Api) -> None:
    image = new_image(api)
    api.alice.post(f"/images/{image['id']}/tags", json={"names": ["wolf"]})
    assert image["id"] in ids(api.rita.get("/images", params={"tags": "wolf"}))
    removed = api.bob.delete(f"/images/{image['id']}/tags/wolf")
    assert removed.json() == {"image_id": image["id"], "name": "wolf", "removed": 1}
    assert image["id"] not in ids(api.rita.get("/images", params={"tags": "wolf"}))
    assert api.bob.delete(f"/images/{image['id']}/tags/wolf").json()["removed"] == 0
    events = api.ada.get("/audit", params={"image_id": image["id"], "type": "tag.removed"})
    [event] = events.json()["events"]
    assert event["actor"]["user"] == "bob"
    assert event["payload"] == {"name": "wolf", "removed": 1}


def test_search_by_tag_date_range_returns_exactly_the_images_tagged_in_it(api: Api) -> None:
    first, second, third = new_image(api), new_image(api), new_image(api)
    times = []
    for image in (first, second, third):
        response = api.bob.post(f"/images/{image['id']}/tags", json={"names": ["daterange"]})
        [tag] = [t for t in response.json()["tags"] if t["name"] == "daterange"]
        times.append(datetime.fromisoformat(tag["added_at"]))
    assert times[0] < times[1] < times[2], "the server clock moves between requests"

    def tagged(**params: Any) -> list[int]:
        return ids(api.rita.get("/images", params={"tags": "daterange", **params}))

    micro = timedelta(microseconds=1)
    assert tagged(tagged_after=times[1].isoformat()) == [third["id"], second["id"]]
    assert tagged(tagged_before=times[1].isoformat()) == [first["id"]]
    assert tagged(
        tagged_after=times[1].isoformat(), tagged_before=(times[1] + micro).isoformat()
    ) == [second["id"]]
    day = times[0].date()
    everything = tagged(
        tagged_after=day.isoformat(), tagged_before=(day + timedelta(days=2)).isoformat()
    )
    assert everything == [third["id"], second["id"], first["id"]]
    by_bob = ids(api.rita.get("/images", params={"tagged_by": "bob", "tags": "daterange"}))
    assert by_bob == [third["id"], second["id"], first["id"]]
    assert tagged(tagged_by="alice") == []


def test_search_by_creation_date_and_provenance(api: Api) -> None:
    image = new_image(api, who="bob")
    created = datetime.fromisoformat(image["created_at"])
    at = ids(api.rita.get("/images", params={"created_after": image["created_at"]}))
    assert at[-1] == image["id"]
    assert all(found >= image["id"] for found in at)
    before = ids(api.rita.get("/images", params={"created_before": created.isoformat()}))
    assert image["id"] not in before
    untagged = ids(api.rita.get("/images", params={"untagged": "true", "limit": 1000}))
    assert image["id"] in untagged
    api.alice.post(f"/images/{image['id']}/tags", json={"names": ["heron"]})
    untagged = ids(api.rita.get("/images", params={"untagged": "true", "limit": 1000}))
    assert image["id"] not in untagged
    human = ids(api.rita.get("/images", params={"source": "human", "tags": "heron"}))
    assert human == [image["id"]]
    assert ids(api.rita.get("/images", params={"source": "model", "tags": "heron"})) == []
    excluded = ids(api.rita.get("/images", params={"tags": "heron", "exclude": "gull"}))
    assert excluded == [image["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/images", {"url": "http://example.com/a.jpg"}),
        ("POST", "/images/{id}/tags", {"names": ["cat"]}),
        ("DELETE", "/images/{id}/tags/cat", None),
        ("PATCH", "/images/{id}", {"label": "mine now"}),
        ("DELETE", "/images/{id}", None),
        ("POST", "/images/{id}/detections", None),
    ],
)
def test_a_reader_may_read_but_every_write_is_403(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    image = new_image(api)
    api.alice.post(f"/images/{image['id']}/tags", json={"names": ["cat"]})
    before = api.rita.get(f"/images/{image['id']}").json()
    response = api.rita.request(method, path.format(id=image["id"]), json=body)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "reader" in response.json()["detail"]
    assert "tagger" in response.json()["detail"]
    assert api.rita.get(f"/images/{image['id']}").json() == before


def test_only_an_admin_reads_the_audit_log(api: Api) -> None:
    assert api.rita.get("/audit").status_code == 403
    assert api.alice.get("/audit").status_code == 403
    assert api.ada.get("/audit").status_code == 200


def test_relabel_and_soft_delete_are_audited(api: Api) -> None:
    image = new_image(api, label="before")
    patched = api.alice.patch(f"/images/{image['id']}", json={"label": "  after  "})
    assert patched.status_code == 200, patched.text
    assert patched.json()["label"] == "after"
    assert api.bob.delete(f"/images/{image['id']}").status_code == 204
    assert api.rita.get(f"/images/{image['id']}").status_code == 404
    assert image["id"] not in ids(api.rita.get("/images", params={"limit": 1000}))
    assert api.bob.delete(f"/images/{image['id']}").status_code == 404
    events = api.ada.get("/audit", params={"image_id": image["id"]}).json()["events"]
    assert [(e["type"], e["actor"]["user"]) for e in events] == [
        ("image.deleted", "bob"),
        ("image.updated", "alice"),
        ("image.created", "alice"),
    ]
    assert events[1]["payload"] == {"label_before": "before", "label": "after"}


def test_detection_can_run_again_and_keeps_earlier_model_tags(api: Api) -> None:
    body = {"image": base64.b64encode(ZIDANE.read_bytes()).decode(), "detect": True}
    first = api.alice.post("/images", json=body)
    assert first.status_code == 200, first.text
    first_tags = first.json()["tags"]
    assert first_tags, "the cascades find the faces in zidane.jpg"
    again = api.bob.post(f"/images/{first.json()['id']}/detections")
    assert again.status_code == 200, again.text
    tags = again.json()["tags"]
    runs = {tag["run_id"] for tag in tags}
    assert len(runs) == 2
    assert tags[: len(first_tags)] == first_tags
    assert {tag["added_by"]["user"] for tag in tags[len(first_tags) :]} == {"bob"}
    events = api.ada.get("/audit", params={"image_id": first.json()["id"], "type": "detection.run"})
    assert [e["actor"]["user"] for e in events.json()["events"]] == ["bob", "alice"]


def test_tag_counts_by_provenance(api: Api) -> None:
    image = new_image(api)
    api.alice.post(f"/images/{image['id']}/tags", json={"names": ["kingfisher"]})
    api.bob.post(f"/images/{image['id']}/tags", json={"names": ["kingfisher"]})
    counts = {row["name"]: row for row in api.rita.get("/tags").json()["tags"]}
    assert counts["kingfisher"] == {"name": "kingfisher", "images": 1, "human": 1, "model": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tagged_after": "yesterday"}, "tagged_after"),
        ({"created_after": "2026-02-30"}, "created_after"),
        ({"tags": "cat", "untagged": "true"}, "untagged"),
        ({"source": "robot"}, "source"),
        ({"source": "human", "objects": "cat"}, "objects"),
        ({"min_confidence": "1.5"}, "min_confidence"),
        ({"tags": "cat", "exclude": "cat"}, "exclude"),
        ({"model": "@v1"}, "model"),
        ({"tagged_after": "2026-01-02", "tagged_before": "2026-01-01"}, "tagged_after"),
        ({"tags": ","}, "tags"),
    ],
)
def test_invalid_search_parameters_are_400_naming_the_parameter(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = api.rita.get("/images", params=params)
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{"names": []}, {"names": ["a,b"]}, {"names": ["x" * 65]}, {"tags": ["cat"]}, {"names": "cat"}],
)
def test_invalid_tag_bodies_are_400(api: Api, body: dict[str, Any]) -> None:
    image = new_image(api)
    response = api.alice.post(f"/images/{image['id']}/tags", json=body)
    assert response.status_code == 400, response.text
    assert api.rita.get(f"/images/{image['id']}/tags").json()["tags"] == []


def test_tagging_an_unknown_image_is_404(api: Api) -> None:
    assert api.alice.post("/images/999999/tags", json={"names": ["cat"]}).status_code == 404
    assert api.rita.get("/images/999999/tags").status_code == 404


def test_an_admin_issues_and_revokes_keys_over_http(api: Api) -> None:
    created = api.ada.post(
        "/keys",
        json={"name": "carol-ui", "user": "carol", "client": "labelling-ui", "role": "tagger"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"]["role"] == "tagger"
    listed = api.ada.get("/keys").json()
    assert body["secret"] not in str(listed)
    assert "carol-ui" in [key["name"] for key in listed]
    with httpx.Client(
        base_url=str(api.ada.base_url), headers={"Authorization": f"Bearer {body['secret']}"}
    ) as carol:
        image = carol.post("/images", json={"url": "http://127.0.0.1:9/x.jpg"})
        assert image.status_code == 422, "a tagger may try; the URL is refused"
        assert carol.get("/keys").status_code == 403
        assert api.ada.delete("/keys/carol-ui").status_code == 204
        assert carol.get("/images").status_code == 401, "revoked at once, cache or not"
    assert api.alice.post("/keys", json={"name": "sneaky", "role": "admin"}).status_code == 403
    events = api.ada.get("/audit", params={"type": "key.created,key.revoked", "user": "ada"})
    assert [e["target"] for e in events.json()["events"]][:2] == ["key:carol-ui", "key:carol-ui"]


def test_detection_again_with_a_threshold_of_its_own_records_it(api: Api) -> None:
    body = {"image": base64.b64encode(ZIDANE.read_bytes()).decode(), "detect": True}
    image = api.alice.post("/images", json=body).json()
    path = f"/images/{image['id']}/detections"
    strict = api.alice.post(path, json={"confidence": 0.9})
    assert strict.status_code == 200, strict.text
    new_tags = [tag for tag in strict.json()["tags"] if tag not in image["tags"]]
    assert all(tag["confidence"] >= 0.9 for tag in new_tags)
    assert all(tag["model"]["confidence_threshold"] == 0.9 for tag in new_tags)
    events = api.ada.get("/audit", params={"image_id": image["id"], "type": "detection.run"})
    assert events.json()["events"][0]["payload"]["confidence_threshold"] == 0.9

    for refused, field in (({"iou": 0.5}, "IoU"), ({"confidence": 2}, "confidence")):
        response = api.alice.post(path, json=refused)
        assert response.status_code == 400, response.text
        assert field in response.json()["detail"]
    assert api.alice.post(path, json={"threshold": 0.5}).status_code == 400
    runs = api.ada.get("/audit", params={"image_id": image["id"], "type": "detection.run"})
    assert len(runs.json()["events"]) == 2, "refused requests run nothing"


def test_a_retried_upload_with_an_idempotency_key_returns_the_first_image(api: Api) -> None:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (9, 9), (1, 2, 3)).save(buffer, "PNG")
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), "label": "retried"}
    headers = {"Idempotency-Key": "8f14e45f-ceea-467f-a8f2-5d6b6ab3c1d0"}
    first = api.alice.post("/images", json=body, headers=headers)
    again = api.alice.post("/images", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    changed = api.alice.post("/images", json={**body, "label": "other"}, headers=headers)
    assert changed.status_code == 422, changed.text
    assert "Idempotency-Key" in changed.json()["detail"]
    bobs = api.bob.post("/images", json=body, headers=headers)
    assert bobs.json()["id"] != first.json()["id"], "keys are per user"
    without = api.alice.post("/images", json=body)
    assert without.json()["id"] not in (first.json()["id"], bobs.json()["id"])
    assert without.json()["sha256"] == first.json()["sha256"], "one blob, shared"
    created = api.ada.get("/audit", params={"type": "image.created", "user": "alice"})
    ids_created = [event["image_id"] for event in created.json()["events"]]
    assert ids_created.count(first.json()["id"]) == 1
