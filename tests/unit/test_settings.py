"""Settings come from IMAGETAG_* variables; a bad one fails at once, naming itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagetag.entrypoints.settings import Settings, SettingsError


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path)})

    assert settings.database_backend == "sqlite"
    assert settings.uses_default_database
    assert settings.detector == "auto"
    assert settings.duplicates == "new"
    assert settings.blobs_dir == tmp_path / "blobs"


def test_values_are_parsed_by_their_type(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "IMAGETAG_DATA_DIR": str(tmp_path),
            "IMAGETAG_PORT": " 9000 ",
            "IMAGETAG_FETCH_ALLOW_PRIVATE": "yes",
            "IMAGETAG_DETECT_CONFIDENCE": "0.5",
            "IMAGETAG_DUPLICATES": "reuse",
        }
    )

    assert (settings.port, settings.fetch_allow_private) == (9000, True)
    assert (settings.detect_confidence, settings.duplicates) == (0.5, "reuse")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGETAG_PORT", "eighty"),
        ("IMAGETAG_PORT", "70000"),
        ("IMAGETAG_DETECTOR", "magic"),
        ("IMAGETAG_DETECT_CONFIDENCE", "1.5"),
        ("IMAGETAG_DETECT_IOU", "0"),
        ("IMAGETAG_MAX_UPLOAD_BYTES", "10"),
        ("IMAGETAG_FETCH_TIMEOUT_SECONDS", "0"),
        ("IMAGETAG_FETCH_MAX_REDIRECTS", "99"),
        ("IMAGETAG_FETCH_ALLOW_PRIVATE", "maybe"),
        ("IMAGETAG_AUTH_CACHE_SECONDS", "-1"),
        ("IMAGETAG_DUPLICATES", "merge"),
        ("IMAGETAG_DETECT_TIMEOUT_SECONDS", "0"),
        ("IMAGETAG_BODY_TIMEOUT_SECONDS", "0"),
        ("IMAGETAG_RATE_LIMIT_PER_MINUTE", "-1"),
        ("IMAGETAG_RATE_LIMIT_BURST", "0"),
        ("IMAGETAG_CORS_ORIGINS", "labelling.example.com"),
        ("IMAGETAG_LOG_LEVEL", "loud"),
        ("IMAGETAG_DATABASE_URL", "mysql://nowhere/db"),
    ],
)
def test_a_bad_value_fails_naming_its_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path), variable: value})


def test_image_formats_are_a_list_of_known_formats(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"IMAGETAG_DATA_DIR": str(tmp_path), "IMAGETAG_IMAGE_FORMATS": " png, jpeg ,PNG"}
    )

    assert settings.image_format_names == ("PNG", "JPEG")
    for bad in ("", "png,svg", " , "):
        with pytest.raises(SettingsError, match="IMAGETAG_IMAGE_FORMATS"):
            Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path), "IMAGETAG_IMAGE_FORMATS": bad})
