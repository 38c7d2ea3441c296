"""What every CLI command opens: the container over a migrated database, and for commands
that detect, a model that starts loading at once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from dependency_injector import providers

from imagetag.domain.errors import DetectorUnavailable
from imagetag.entrypoints.cli import runtime
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.settings import Settings


class SlowLoadingDetector:
    """Records when its model starts and finishes loading."""

    def __init__(self, events: list[str], error: Exception | None = None) -> None:
        self.events = events
        self.error = error

    async def warm_up(self) -> None:
        self.events.append("model loading")
        await asyncio.sleep(0.05)
        if self.error is not None:
            raise self.error
        self.events.append("model loaded")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    recorded: list[str] = []
    prepare = runtime.prepare_database

    async def recorded_prepare(settings: Settings) -> None:
        await prepare(settings)
        recorded.append("database checked")

    monkeypatch.setattr(runtime, "prepare_database", recorded_prepare)
    return recorded


def with_detector(monkeypatch: pytest.MonkeyPatch, detector: SlowLoadingDetector) -> None:
    def build(settings: Settings) -> Container:
        container = build_container(settings)
        container.detector.override(providers.Object(detector))
        return container

    monkeypatch.setattr(runtime, "build_container", build)


async def test_a_command_that_detects_starts_loading_the_model_before_the_database_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[str]
) -> None:
    with_detector(monkeypatch, SlowLoadingDetector(events))

    async with runtime.open_container(Settings(data_dir=tmp_path), warm_detector=True):
        events.append("first image")
        await asyncio.sleep(0.1)

    order = events.index
    assert order("model loading") < order("database checked") < order("first image")
    assert "model loaded" in events


async def test_other_commands_load_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[str]
) -> None:
    with_detector(monkeypatch, SlowLoadingDetector(events))

    async with runtime.open_container(Settings(data_dir=tmp_path)):
        await asyncio.sleep(0.1)

    assert events == ["database checked"]


async def test_a_model_that_will_not_load_is_logged_and_the_command_goes_on(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    events: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = SlowLoadingDetector(events, DetectorUnavailable("weights not found at x.pt"))
    with_detector(monkeypatch, failing)

    with caplog.at_level(logging.ERROR):
        async with runtime.open_container(Settings(data_dir=tmp_path), warm_detector=True):
            await asyncio.sleep(0.1)
            events.append("first image")

    assert events == ["model loading", "database checked", "first image"]
    assert "the detector could not be loaded: weights not found at x.pt" in caplog.text
