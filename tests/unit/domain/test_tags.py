import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo
from imagetag.domain.errors import InvalidInput
from imagetag.domain.principals import Actor
from imagetag.domain.tags import (
    MAX_TAG_NAME_LENGTH,
    MAX_TAGS_PER_REQUEST,
    Tag,
    TagSource,
    check_tag_name,
    check_tag_names,
    parse_tag_source,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("alice", "labelling-ui")
YOLO = DetectorInfo(detector="yolo", model="yolov8n.pt", library_version="8.3.0")
BOX = BoundingBox(0.1, 0.1, 0.5, 0.5)


def model_tag(**changes: Any) -> Tag:
    values: dict[str, Any] = {
        "name": "dog",
        "source": TagSource.MODEL,
        "actor": ALICE,
        "added_at": NOW,
        "confidence": 0.8,
        "box": BOX,
        "model": YOLO,
        "run_id": 3,
    }
    return Tag(**(values | changes))


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("  cat  ", "cat"),
        ("Golden Retriever", "golden retriever"),
        ("STRASSE", "strasse"),
        ("cafe\u0301", "caf\u00e9"),
        ("traffic_light", "traffic light"),
        ("sea  \t lion", "sea lion"),
        ("rock & roll", "rock & roll"),
        ("jack-o'-lantern", "jack-o'-lantern"),
        ("c++ / c#: (notes).", "c++ / c#: (notes)."),
        ("猫", "猫"),
        ("42", "42"),
    ],
)
def test_a_tag_name_is_trimmed_case_folded_composed_and_single_spaced(raw: str, name: str) -> None:
    assert check_tag_name(raw) == name


def test_a_tag_name_may_be_exactly_the_maximum_length() -> None:
    name = "x" * MAX_TAG_NAME_LENGTH

    assert check_tag_name(f"  {name.upper()} ") == name


def test_a_tag_name_longer_than_the_maximum_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=f"longer than {MAX_TAG_NAME_LENGTH}") as raised:
        check_tag_name("x" * (MAX_TAG_NAME_LENGTH + 1))

    assert raised.value.field == "tags"


@pytest.mark.parametrize("raw", ["", "   ", "__", '""'])
def test_an_empty_tag_name_is_invalid_input(raw: str) -> None:
    with pytest.raises(InvalidInput, match="empty") as raised:
        check_tag_name(raw)

    assert raised.value.field == "tags"


@pytest.mark.parametrize(
    ("raw", "forbidden"),
    [
        ("dog,cat", ","),
        ("a;b", ";"),
        ("50%", "%"),
        ("hello!", "!"),
        ("x\x00y", "\x00"),
        ("bell\x07", "\x07"),
        ("zero\u200bwidth", "\u200b"),
        ("smile \U0001f600", "\U0001f600"),
    ],
)
def test_a_tag_name_with_a_forbidden_character_is_invalid_input_saying_which(
    raw: str, forbidden: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_tag_name(raw, field="name")

    assert raised.value.field == "name"
    assert repr(forbidden).strip("'") in str(raised.value)
    assert "use letters, digits, spaces" in str(raised.value)


def test_blank_control_characters_read_as_a_space_rather_than_being_refused() -> None:
    assert check_tag_name("sea\tlion\n") == "sea lion"


@given(st.text(max_size=80))
def test_check_tag_name_is_idempotent_on_what_it_returns(raw: str) -> None:
    try:
        name = check_tag_name(raw)
    except InvalidInput:
        return

    assert check_tag_name(name) == name


@given(st.text(max_size=80))
def test_a_checked_tag_name_is_bounded_composed_and_free_of_commas(raw: str) -> None:
    try:
        name = check_tag_name(raw)
    except InvalidInput:
        return

    assert 1 <= len(name) <= MAX_TAG_NAME_LENGTH
    assert "," not in name
    assert name == name.strip()
    assert unicodedata.is_normalized("NFC", name)


@pytest.mark.parametrize("raw", ["\u01f0", "\u03b0", "\u1fb6"])
def test_a_tag_name_whose_case_folding_decomposes_is_still_returned_composed(raw: str) -> None:
    assert unicodedata.is_normalized("NFC", check_tag_name(raw))


def test_check_tag_names_normalises_each_and_drops_duplicates_in_order() -> None:
    assert check_tag_names(["Cat", "dog", " cat ", "Golden_Retriever"]) == (
        "cat",
        "dog",
        "golden retriever",
    )


def test_check_tag_names_needs_at_least_one_name() -> None:
    with pytest.raises(InvalidInput, match="at least one") as raised:
        check_tag_names([])

    assert raised.value.field == "tags"


def test_check_tag_names_refuses_the_whole_request_when_one_name_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="','"):
        check_tag_names(["cat", "dog,bird"])


def test_check_tag_names_allows_at_most_the_maximum_per_request() -> None:
    names = [f"tag {n}" for n in range(MAX_TAGS_PER_REQUEST + 1)]

    assert len(check_tag_names(names[:-1])) == MAX_TAGS_PER_REQUEST
    with pytest.raises(InvalidInput, match=f"at most {MAX_TAGS_PER_REQUEST}"):
        check_tag_names(names)


def test_duplicates_do_not_count_towards_the_maximum_per_request() -> None:
    assert check_tag_names(["cat"] * (MAX_TAGS_PER_REQUEST + 1)) == ("cat",)


@pytest.mark.parametrize(
    ("raw", "source"), [("human", TagSource.HUMAN), (" MODEL", TagSource.MODEL)]
)
def test_parse_tag_source_reads_human_or_model(raw: str, source: TagSource) -> None:
    assert parse_tag_source(raw) is source


@pytest.mark.parametrize("raw", ["", "machine", "both"])
def test_parse_tag_source_refuses_anything_else_naming_the_source_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_tag_source(raw)

    assert raised.value.field == "source"


def test_a_human_tag_carries_who_added_it_and_when_and_nothing_else() -> None:
    tag = Tag.by_human("cat", ALICE, NOW)

    assert (tag.name, tag.source, tag.actor, tag.added_at) == ("cat", TagSource.HUMAN, ALICE, NOW)
    assert (tag.confidence, tag.box, tag.model, tag.run_id) == (None, None, None, None)


@pytest.mark.parametrize(
    "extra",
    [{"confidence": 0.5}, {"box": BOX}, {"model": YOLO}, {"run_id": 1}],
)
def test_a_human_tag_has_no_confidence_box_model_or_run(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="human tag"):
        Tag(name="cat", source=TagSource.HUMAN, actor=ALICE, added_at=NOW, **extra)


def test_a_tag_from_a_detection_keeps_its_provenance() -> None:
    found = Detection(name="Dog", confidence=0.8, box=BOX, detector=YOLO)

    tag = Tag.from_detection(found, ALICE, NOW, run_id=3)

    assert tag == model_tag()


@pytest.mark.parametrize("missing", ["confidence", "model"])
def test_a_model_tag_has_a_confidence_and_a_model(missing: str) -> None:
    with pytest.raises(ValueError, match="model tag"):
        model_tag(**{missing: None})


def test_a_model_tag_may_lack_a_box_when_the_detector_gives_none() -> None:
    assert model_tag(box=None).box is None


@pytest.mark.parametrize("confidence", [-0.1, 1.5, float("nan")])
def test_a_model_tag_confidence_lies_within_zero_to_one(confidence: float) -> None:
    with pytest.raises(ValueError, match=r"0\.\.1"):
        model_tag(confidence=confidence)


@pytest.mark.parametrize("name", ["", "Dog", " dog", "traffic_light"])
def test_a_tag_name_is_stored_normalised(name: str) -> None:
    with pytest.raises(ValueError, match="normalised"):
        Tag.by_human(name, ALICE, NOW)


def test_a_tag_time_is_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Tag.by_human("cat", ALICE, datetime(2024, 5, 1, 12, 0))
