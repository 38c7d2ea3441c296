"""The collector pause around imports and model loads."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from imagetag.adapters.garbage_collection import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_pauses_the_collector_then_freezes_what_exists_and_resumes() -> None:
    gc.enable()
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        kept: list[list[int]] = [[] for _ in range(1000)]  # lists: the collector tracks them
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)


def test_leaves_a_collector_off_that_was_off_before() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_resumes_the_collector_when_the_block_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the model would not load")
    assert gc.isenabled()
