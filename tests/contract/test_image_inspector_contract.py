"""The ImageInspector port: facts from the bytes of an image, refusal of anything else."""

from __future__ import annotations

import io

import pytest

from imagetag.domain.errors import UnsupportedImage
from tests.contract.adapters import InspectorCase


def test_a_real_image_gives_its_format_and_size(inspector_case: InspectorCase) -> None:
    assert (
        inspector_case.inspector.inspect(io.BytesIO(inspector_case.image)) == inspector_case.facts
    )


@pytest.mark.parametrize("data", [b"", b"certainly not an image", b"GIF89a", b"%PDF-1.7\n"])
def test_bytes_that_are_no_image_are_unsupported(
    inspector_case: InspectorCase, data: bytes
) -> None:
    with pytest.raises(UnsupportedImage):
        inspector_case.inspector.inspect(io.BytesIO(data))


def test_the_bounded_read_finds_what_inspect_finds_or_leaves_it(
    inspector_case: InspectorCase,
) -> None:
    assert inspector_case.inspector.inspect_bounded(inspector_case.image) in (
        None,
        inspector_case.facts,
    )


@pytest.mark.parametrize("data", [b"", b"certainly not an image", b"GIF89a", b"%PDF-1.7\n"])
def test_the_bounded_read_finds_nothing_in_bytes_that_are_no_image(
    inspector_case: InspectorCase, data: bytes
) -> None:
    assert inspector_case.inspector.inspect_bounded(data) is None


def test_a_real_image_verifies(inspector_case: InspectorCase) -> None:
    inspector_case.inspector.verify(io.BytesIO(inspector_case.image))


def test_a_damaged_image_passes_the_header_check_and_fails_verification(
    inspector_case: InspectorCase,
) -> None:
    damaged = io.BytesIO(inspector_case.damaged)
    assert inspector_case.inspector.inspect(damaged) == inspector_case.facts
    with pytest.raises(UnsupportedImage):
        inspector_case.inspector.verify(damaged)
