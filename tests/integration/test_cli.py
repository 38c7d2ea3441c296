"""The imagetag command as a new user runs it: real processes, a real server, real images."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.assets import BUS, ZIDANE
from tests.support.postgres import free_port

IMAGETAG = [sys.executable, "-m", "imagetag"]
KEY = re.compile(r"itk_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGETAG_")}
    env.update(
        IMAGETAG_DATA_DIR=str(tmp_path / "data"),
        HOME=str(tmp_path / "home"),
        COLUMNS="200",
        NO_COLOR="1",
    )
    return env


def imagetag(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*IMAGETAG, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_keys_are_created_shown_once_listed_and_revoked(environment: dict[str, str]) -> None:
    created = imagetag(environment, "keys", "create", "alice-laptop")
    secret = created.stdout.strip().splitlines()[-1]
    assert KEY.fullmatch(secret)
    listed = imagetag(environment, "keys", "list").stdout
    assert "alice-laptop" in listed
    assert secret not in listed
    assert secret[:8] in listed
    imagetag(environment, "keys", "revoke", "alice-laptop")
    again = imagetag(environment, "keys", "revoke", "alice-laptop", check=False)
    assert again.returncode == 1
    assert "no active API key named 'alice-laptop'" in again.stderr
    bad = imagetag(environment, "keys", "create", "no spaces please", check=False)
    assert bad.returncode == 1
    assert "key name" in bad.stderr


def test_a_key_belongs_to_a_user_names_its_client_and_has_a_role(
    environment: dict[str, str],
) -> None:
    imagetag(
        environment, "keys", "create", "alice-ui", "--user", "alice",
        "--client", "labelling-ui", "--role", "tagger",
    )  # fmt: skip
    imagetag(environment, "keys", "create", "dashboard")
    listed = imagetag(environment, "keys", "list").stdout
    assert re.search(r"alice-ui\s.*alice\s.*labelling-ui\s.*tagger", listed), listed
    assert re.search(r"dashboard\s.*dashboard\s.*dashboard\s.*reader", listed), listed
    bad = imagetag(environment, "keys", "create", "x", "--role", "owner", check=False)
    assert bad.returncode == 1
    assert "role must be one of reader, tagger, admin" in bad.stderr
    imagetag(environment, "keys", "revoke", "dashboard")
    audit = imagetag(environment, "audit").stdout
    assert re.search(r"key\.revoked\s.*imagetag-cli\s.*key:dashboard", audit), audit
    assert re.search(r"key\.created\s.*imagetag-cli\s.*key:alice-ui", audit), audit
    only_revoked = imagetag(environment, "audit", "--type", "key.revoked").stdout
    assert "key:alice-ui" not in only_revoked
    assert "1 event(s)" in only_revoked


def test_tag_a_folder_with_detection_then_search_by_object(
    environment: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(BUS, folder / "bus.jpg")
    shutil.copy(ZIDANE, folder.parent / "zidane.jpg")
    (folder / "notes.txt").write_text("not an image")
    environment["IMAGETAG_DETECTOR"] = "opencv"
    tagged = imagetag(environment, "tag", str(folder.parent), "--detect", "--tags", "Street,demo")
    assert "stored 2 image(s)" in tagged.stdout
    by_tag = imagetag(environment, "search", "--tags", "street", "--source", "human").stdout
    assert "2 image(s)" in by_tag
    assert "demo, street" in by_tag
    found = imagetag(environment, "search", "--objects", "face,person").stdout
    assert "2 image(s)" in found
    assert "via imagetag-cli" in found
    nothing = imagetag(environment, "search", "--objects", "zebra").stdout
    assert "0 image(s)" in nothing
    invalid = imagetag(environment, "search", "--objects", " , ", check=False)
    assert invalid.returncode == 1
    assert "objects" in invalid.stderr


def test_tag_reports_files_that_are_not_images(environment: dict[str, str], tmp_path: Path) -> None:
    bogus = tmp_path / "fake.jpg"
    bogus.write_bytes(b"not really a jpeg")
    result = imagetag(environment, "tag", str(bogus), check=False)
    assert result.returncode == 1
    assert "refused 1" in result.stdout


def test_bad_configuration_fails_at_start_naming_the_setting(environment: dict[str, str]) -> None:
    environment["IMAGETAG_DETECTOR"] = "magic"
    result = imagetag(environment, "serve", check=False)
    assert result.returncode == 2
    assert "IMAGETAG_DETECTOR" in result.stderr


@pytest.fixture
def served(environment: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`imagetag serve` on a fresh data dir, as the README's run command starts it."""
    port = free_port()
    process = subprocess.Popen(
        [*IMAGETAG, "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        assert process.stdout is not None
        secret = None
        deadline = time.monotonic() + 120
        while secret is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            match = KEY.search(line)
            secret = match.group(0) if match else None
        assert secret, "".join(output)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base_url, secret
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_on_a_fresh_install_prints_a_working_admin_key(
    served: tuple[str, str], environment: dict[str, str]
) -> None:
    base_url, secret = served
    auth = {"Authorization": f"Bearer {secret}"}
    with BUS.open("rb") as photo:
        created = httpx.post(
            f"{base_url}/images",
            headers=auth,
            files={"file": ("bus.jpg", photo, "image/jpeg")},
            data={"detect": "true"},
            timeout=120,
        )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["created_by"] == {"user": "admin", "client": "imagetag-serve"}
    assert body["objects"], "the offline detector finds the faces or people in bus.jpg"
    found = httpx.get(f"{base_url}/images", params={"objects": body["objects"][0]}, headers=auth)
    assert [image["id"] for image in found.json()["images"]] == [body["id"]]
    assert httpx.get(f"{base_url}/images").status_code == 401
    assert httpx.get(f"{base_url}/images/{body['id']}").status_code == 401
    health = httpx.get(f"{base_url}/health").json()
    assert health["detector"]["detector"] in ("opencv", "yolo", "yolo-onnx")
