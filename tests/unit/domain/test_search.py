import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagetag.domain.detections import DetectorInfo
from imagetag.domain.errors import InvalidInput
from imagetag.domain.images import Image, ImageFacts
from imagetag.domain.principals import Actor
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    MAX_IMAGE_ID,
    MAX_PAGE_SIZE,
    Match,
    ModelRef,
    SearchQuery,
    decode_cursor,
    encode_cursor,
    parse_match,
    parse_names,
    parse_search,
    parse_time_bound,
)
from imagetag.domain.tags import Tag, TagSource

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)
ALICE = Actor("alice", "labelling-ui")
BOB = Actor("bob", "notebook")
YOLO_SHA = "3b2c1f0e9d8a" + "7" * 52
YOLO = DetectorInfo("yolo-torch", "yolov8n.pt", "8.3.0", model_sha256=YOLO_SHA)
YOLO_RETRAINED = DetectorInfo("yolo-torch", "yolov8n.pt", "8.3.0", model_sha256="e" * 64)
IMAGGA = DetectorInfo("imagga", "imagga-tagging", "v2")
VOCABULARY = ["dog", "cat", "bus", "person"]


def human(name: str, actor: Actor = ALICE, at: datetime = T0) -> Tag:
    return Tag.by_human(name, actor, at)


def model(
    name: str,
    confidence: float = 0.9,
    detector: DetectorInfo = YOLO,
    at: datetime = T0,
    actor: Actor = ALICE,
) -> Tag:
    return Tag(name, TagSource.MODEL, actor, at, confidence=confidence, model=detector, run_id=1)


def image(*tags: Tag, image_id: int = 1, created_at: datetime = T0) -> Image:
    return Image(
        id=image_id,
        label="an image",
        source=None,
        sha256="ab" * 32,
        facts=ImageFacts("image/png", 10, 10),
        size_bytes=100,
        created_at=created_at,
        created_by=ALICE,
        tags=tags,
    )


# Validation: every refusal names the parameter to fix.


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"untagged": True, "tags": ("cat",)}, "untagged"),
        ({"untagged": True, "objects": ("dog",)}, "untagged"),
        ({"source": TagSource.HUMAN, "objects": ("dog",)}, "objects"),
        ({"source": TagSource.HUMAN, "model": ModelRef("yolov8n.pt")}, "model"),
        ({"tags": ("cat", "dog"), "exclude": ("dog",)}, "exclude"),
        ({"objects": ("bus",), "exclude": ("bus", "cat")}, "exclude"),
        ({"min_confidence": -0.01}, "min_confidence"),
        ({"min_confidence": 1.01}, "min_confidence"),
        ({"min_confidence": math.nan}, "min_confidence"),
        ({"min_confidence": math.inf}, "min_confidence"),
        ({"tagged_by": ""}, "tagged_by"),
        ({"tagged_after": T0, "tagged_before": T0}, "tagged_after"),
        ({"tagged_after": T0, "tagged_before": T0 - HOUR}, "tagged_after"),
        ({"created_after": T0, "created_before": T0}, "created_after"),
        ({"created_after": T0 + HOUR, "created_before": T0}, "created_after"),
        ({"limit": 0}, "limit"),
        ({"limit": MAX_PAGE_SIZE + 1}, "limit"),
        ({"before_id": 0}, "cursor"),
        ({"before_id": -5}, "cursor"),
        ({"before_id": MAX_IMAGE_ID + 1}, "cursor"),
    ],
)
def test_a_search_query_refuses_contradictory_or_out_of_range_input_naming_the_field(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        SearchQuery(**fields)

    assert raised.value.field == field
    assert str(raised.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"untagged": False, "tags": ("cat",)},
        {"untagged": True, "exclude": ("cat",)},
        {"source": TagSource.MODEL, "objects": ("dog",), "model": ModelRef("yolov8n.pt")},
        {"source": TagSource.HUMAN, "tags": ("cat",)},
        {"min_confidence": 0.0},
        {"min_confidence": 1.0},
        {"tagged_after": T0, "tagged_before": T0 + TICK},
        {"created_after": T0, "created_before": T0 + TICK},
        {"limit": 1},
        {"limit": MAX_PAGE_SIZE},
        {"before_id": MAX_IMAGE_ID},
    ],
)
def test_a_search_query_accepts_consistent_input_at_its_limits(fields: dict[str, Any]) -> None:
    assert SearchQuery(**fields)


def test_a_search_query_defaults_to_a_default_page_of_any_match() -> None:
    query = SearchQuery()

    assert query.limit == DEFAULT_PAGE_SIZE
    assert query.match is Match.ANY


@pytest.mark.parametrize(
    "bound", ["tagged_after", "tagged_before", "created_after", "created_before"]
)
def test_a_search_query_time_bound_is_timezone_aware(bound: str) -> None:
    naive: dict[str, Any] = {bound: datetime(2024, 5, 1)}

    with pytest.raises(ValueError, match="timezone"):
        SearchQuery(**naive)


# Which images a query includes.


def test_no_filter_includes_every_image_tagged_or_not() -> None:
    query = SearchQuery()

    assert query.includes(image())
    assert query.includes(image(human("cat"), model("dog")))


def test_objects_look_only_at_model_tags() -> None:
    query = SearchQuery(objects=("dog",))

    assert query.includes(image(model("dog")))
    assert not query.includes(image(human("dog")))


def test_tags_look_at_tags_of_either_source() -> None:
    query = SearchQuery(tags=("dog",))

    assert query.includes(image(model("dog")))
    assert query.includes(image(human("dog")))
    assert not query.includes(image(human("cat")))


@pytest.mark.parametrize("names", ["objects", "tags"])
def test_match_any_needs_one_of_the_names_and_match_all_every_one(names: str) -> None:
    wanted: dict[str, Any] = {names: ("dog", "cat")}
    any_ = SearchQuery(**wanted, match=Match.ANY)
    all_ = SearchQuery(**wanted, match=Match.ALL)
    both, dog, bus = image(model("dog"), model("cat")), image(model("dog")), image(model("bus"))

    assert [any_.includes(i) for i in (both, dog, bus)] == [True, True, False]
    assert [all_.includes(i) for i in (both, dog, bus)] == [True, False, False]


def test_match_all_over_tags_may_be_met_by_a_person_and_a_model_together() -> None:
    query = SearchQuery(tags=("dog", "cat"), match=Match.ALL)

    assert query.includes(image(model("dog"), human("cat")))


def test_objects_and_tags_together_must_both_hold() -> None:
    query = SearchQuery(objects=("dog",), tags=("outdoor",))

    assert query.includes(image(model("dog"), human("outdoor")))
    assert not query.includes(image(model("dog")))
    assert not query.includes(image(human("dog"), human("outdoor")))


def test_exclude_drops_images_carrying_any_excluded_tag_of_either_source() -> None:
    query = SearchQuery(exclude=("cat", "bus"))

    assert query.includes(image(model("dog")))
    assert query.includes(image())
    assert not query.includes(image(model("dog"), human("cat")))
    assert not query.includes(image(model("bus")))


def test_exclude_looks_only_at_qualifying_tags() -> None:
    query = SearchQuery(exclude=("cat",), source=TagSource.MODEL)

    assert query.includes(image(model("dog"), human("cat")))
    assert not query.includes(image(model("dog"), model("cat")))


def test_untagged_true_finds_images_without_any_tag() -> None:
    query = SearchQuery(untagged=True)

    assert query.includes(image())
    assert not query.includes(image(human("cat")))
    assert not query.includes(image(model("dog")))


def test_untagged_false_finds_images_with_some_tag() -> None:
    query = SearchQuery(untagged=False)

    assert not query.includes(image())
    assert query.includes(image(human("cat")))
    assert query.includes(image(model("dog")))


def test_untagged_with_a_source_asks_about_tags_of_that_source_only() -> None:
    not_by_people = SearchQuery(untagged=True, source=TagSource.HUMAN)

    assert not_by_people.includes(image(model("dog")))
    assert not not_by_people.includes(image(model("dog"), human("cat")))


@pytest.mark.parametrize(
    "fields",
    [
        {"source": TagSource.HUMAN},
        {"source": TagSource.MODEL},
        {"model": ModelRef("yolov8n.pt")},
        {"min_confidence": 0.5},
        {"tagged_by": "bob"},
        {"tagged_after": T0},
        {"tagged_before": T0 + HOUR},
    ],
)
def test_a_provenance_filter_alone_asks_for_at_least_one_qualifying_tag(
    fields: dict[str, Any],
) -> None:
    query = SearchQuery(**fields)

    assert query.wants_some_qualifying_tag
    assert not query.includes(image())


def test_a_source_filter_alone_finds_images_with_a_tag_of_that_source() -> None:
    by_people = SearchQuery(source=TagSource.HUMAN)

    assert by_people.includes(image(human("cat")))
    assert not by_people.includes(image(model("dog")))


def test_without_names_or_provenance_filters_no_tag_is_needed() -> None:
    assert not SearchQuery().wants_some_qualifying_tag
    assert not SearchQuery(exclude=("cat",)).wants_some_qualifying_tag
    assert not SearchQuery(untagged=True, source=TagSource.HUMAN).wants_some_qualifying_tag


def test_tagged_by_keeps_the_tags_of_that_user_through_any_client() -> None:
    query = SearchQuery(tags=("cat",), tagged_by="bob")

    assert query.includes(image(human("cat", Actor("bob", "cli"))))
    assert query.includes(image(human("cat", BOB)))
    assert not query.includes(image(human("cat", ALICE), human("dog", BOB)))


def test_tagged_by_also_matches_model_tags_of_runs_that_user_asked_for() -> None:
    assert SearchQuery(objects=("dog",), tagged_by="bob").includes(image(model("dog", actor=BOB)))


def test_min_confidence_drops_less_confident_model_tags_and_keeps_the_boundary() -> None:
    query = SearchQuery(objects=("dog",), min_confidence=0.5)

    assert query.includes(image(model("dog", 0.5)))
    assert query.includes(image(model("dog", 0.49), model("dog", 0.51)))
    assert not query.includes(image(model("dog", 0.49)))


def test_min_confidence_lets_human_tags_pass() -> None:
    query = SearchQuery(tags=("cat",), min_confidence=1.0)

    assert query.includes(image(human("cat")))
    assert not query.includes(image(model("cat", 0.99)))


def test_model_name_matches_every_version_of_that_model() -> None:
    query = SearchQuery(objects=("dog",), model=ModelRef("yolov8n.pt"))

    assert query.includes(image(model("dog", detector=YOLO)))
    assert query.includes(image(model("dog", detector=YOLO_RETRAINED)))
    assert not query.includes(image(model("dog", detector=IMAGGA)))


def test_model_at_version_matches_the_weights_sha256_prefix() -> None:
    assert YOLO.model_version == "3b2c1f0e9d8a"
    query = SearchQuery(objects=("dog",), model=ModelRef("yolov8n.pt", "3b2c1f0e9d8a"))

    assert query.includes(image(model("dog", detector=YOLO)))
    assert not query.includes(image(model("dog", detector=YOLO_RETRAINED)))


def test_model_at_version_matches_the_library_version_when_the_weights_are_unknown() -> None:
    assert IMAGGA.model_version == "v2"

    assert SearchQuery(model=ModelRef("imagga-tagging", "v2")).includes(
        image(model("dog", detector=IMAGGA))
    )
    assert not SearchQuery(model=ModelRef("imagga-tagging", "v3")).includes(
        image(model("dog", detector=IMAGGA))
    )


def test_a_model_filter_never_qualifies_a_human_tag() -> None:
    query = SearchQuery(tags=("dog",), model=ModelRef("yolov8n.pt"))

    assert not query.includes(image(human("dog")))


def test_tagged_after_and_before_are_half_open_at_the_exact_instants() -> None:
    query = SearchQuery(tags=("cat",), tagged_after=T0, tagged_before=T0 + HOUR)

    assert query.includes(image(human("cat", at=T0)))
    assert query.includes(image(human("cat", at=T0 + HOUR - TICK)))
    assert not query.includes(image(human("cat", at=T0 - TICK)))
    assert not query.includes(image(human("cat", at=T0 + HOUR)))


def test_created_after_and_before_are_half_open_at_the_exact_instants() -> None:
    query = SearchQuery(created_after=T0, created_before=T0 + HOUR)

    assert query.includes(image(created_at=T0))
    assert query.includes(image(created_at=T0 + HOUR - TICK))
    assert not query.includes(image(created_at=T0 - TICK))
    assert not query.includes(image(created_at=T0 + HOUR))


def test_time_bounds_compare_instants_whatever_their_offset() -> None:
    paris = timezone(timedelta(hours=2))
    query = SearchQuery(created_after=datetime(2024, 5, 1, 14, 0, tzinfo=paris))

    assert query.includes(image(created_at=T0))
    assert not query.includes(image(created_at=T0 - TICK))


def test_before_id_keeps_only_older_images() -> None:
    query = SearchQuery(before_id=3)

    assert query.includes(image(image_id=2))
    assert not query.includes(image(image_id=3))


# Properties over generated images.

actors = st.sampled_from([ALICE, BOB])
instants = st.integers(min_value=0, max_value=4).map(lambda hours: T0 + hours * HOUR)
human_tags = st.builds(human, st.sampled_from(VOCABULARY), actors, instants)
model_tags = st.builds(
    model,
    st.sampled_from(VOCABULARY),
    st.sampled_from([0.2, 0.5, 0.9]),
    st.sampled_from([YOLO, YOLO_RETRAINED, IMAGGA]),
    instants,
    actors,
)
images = st.builds(
    lambda tags, image_id, created_at: image(*tags, image_id=image_id, created_at=created_at),
    st.lists(human_tags | model_tags, max_size=6),
    st.integers(min_value=1, max_value=20),
    instants,
)
names = st.lists(st.sampled_from(VOCABULARY), max_size=3, unique=True).map(tuple)


@st.composite
def provenance_filters(draw: st.DrawFn) -> dict[str, Any]:
    """Provenance filters that never clash with objects=."""
    after = draw(st.none() | instants)
    return {
        "source": draw(st.sampled_from([None, TagSource.MODEL])),
        "model": draw(st.sampled_from([None, ModelRef("yolov8n.pt"), ModelRef("imagga-tagging")])),
        "min_confidence": draw(st.sampled_from([None, 0.5])),
        "tagged_by": draw(st.sampled_from([None, "alice", "bob"])),
        "tagged_after": after,
        "tagged_before": None if after is None else after + draw(st.sampled_from([HOUR, 3 * HOUR])),
        "created_after": draw(st.none() | instants),
        "before_id": draw(st.none() | st.integers(min_value=1, max_value=20)),
    }


@given(names, names, provenance_filters(), images)
def test_match_all_includes_a_subset_of_what_match_any_includes(
    objects: tuple[str, ...], tags: tuple[str, ...], filters: dict[str, Any], candidate: Image
) -> None:
    every = SearchQuery(objects=objects, tags=tags, match=Match.ALL, **filters)
    some = SearchQuery(objects=objects, tags=tags, match=Match.ANY, **filters)

    if every.includes(candidate):
        assert some.includes(candidate)


@given(names, names, provenance_filters(), images)
def test_exclude_never_returns_an_image_carrying_a_qualifying_excluded_tag(
    tags: tuple[str, ...], exclude: tuple[str, ...], filters: dict[str, Any], candidate: Image
) -> None:
    tags = tuple(name for name in tags if name not in exclude)
    query = SearchQuery(tags=tags, exclude=exclude, **filters)

    if query.includes(candidate):
        assert not any(query.qualifies(tag) and tag.name in exclude for tag in candidate.tags)


@given(names, names, provenance_filters(), images)
def test_adding_an_exclusion_never_adds_an_image(
    tags: tuple[str, ...], exclude: tuple[str, ...], filters: dict[str, Any], candidate: Image
) -> None:
    tags = tuple(name for name in tags if name not in exclude)
    without = SearchQuery(tags=tags, **filters)
    with_ = SearchQuery(tags=tags, exclude=exclude, **filters)

    if with_.includes(candidate):
        assert without.includes(candidate)


@given(provenance_filters(), images)
def test_untagged_true_and_false_split_the_images_in_two(
    filters: dict[str, Any], candidate: Image
) -> None:
    filters = filters | {"before_id": None, "created_after": None}
    untagged = SearchQuery(untagged=True, **filters).includes(candidate)
    tagged = SearchQuery(untagged=False, **filters).includes(candidate)

    assert untagged != tagged
    assert tagged == any(SearchQuery(**filters).qualifies(tag) for tag in candidate.tags)


@given(names, names, provenance_filters(), images)
def test_tags_that_do_not_qualify_change_nothing(
    tags: tuple[str, ...], exclude: tuple[str, ...], filters: dict[str, Any], candidate: Image
) -> None:
    tags = tuple(name for name in tags if name not in exclude)
    query = SearchQuery(tags=tags, exclude=exclude, **filters)
    qualifying = [tag for tag in candidate.tags if query.qualifies(tag)]

    assert query.includes(candidate) == query.includes(
        dataclasses.replace(candidate, tags=tuple(qualifying))
    )


# Parsing query parameters.


@pytest.mark.parametrize(
    ("raw", "names"),
    [('"Dog, cat"', ("dog", "cat")), (["dog", "Traffic_Light,dog"], ("dog", "traffic light"))],
)
def test_parse_names_splits_normalises_and_deduplicates(
    raw: str | list[str], names: tuple[str, ...]
) -> None:
    assert parse_names(raw, "tags") == names


@pytest.mark.parametrize("field", ["objects", "tags", "exclude"])
@pytest.mark.parametrize("raw", ["", " ", ",", '""', "' , '", []])
def test_parse_names_without_any_name_is_invalid_input_on_that_field(
    raw: str | list[str], field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"{field}=dog,cat") as raised:
        parse_names(raw, field)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("raw", "mode"), [("any", Match.ANY), (" ALL ", Match.ALL), (Match.ALL, Match.ALL)]
)
def test_match_mode_is_read_case_insensitively(raw: str | Match, mode: Match) -> None:
    assert parse_match(raw) is mode


@pytest.mark.parametrize("raw", ["", "some", "every", "anyall"])
def test_an_unknown_match_mode_is_invalid_input_on_match(raw: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_match(raw)

    assert raised.value.field == "match"


@pytest.mark.parametrize(
    ("raw", "ref"),
    [
        ("yolov8n.pt", ModelRef("yolov8n.pt")),
        (" yolov8n.pt @ 3b2c1f0e9d8a ", ModelRef("yolov8n.pt", "3b2c1f0e9d8a")),
        ("org@hub/model@v2", ModelRef("org@hub/model", "v2")),
    ],
)
def test_model_ref_reads_name_and_optional_version_after_the_last_at(
    raw: str, ref: ModelRef
) -> None:
    assert ModelRef.parse(raw) == ref


@pytest.mark.parametrize("raw", ["", "  ", "@v2", "yolov8n.pt@", "yolov8n.pt@  ", "@"])
def test_model_ref_without_a_name_or_with_an_empty_version_is_invalid_input(raw: str) -> None:
    with pytest.raises(InvalidInput, match="NAME@VERSION") as raised:
        ModelRef.parse(raw)

    assert raised.value.field == "model"


def test_a_date_bound_means_midnight_utc_of_that_day() -> None:
    assert parse_time_bound("2026-11-25", "created_after") == datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["2026-11-25T14:30:00", "2026-11-25T14:30:00Z", " 2026-11-25 14:30 "]
)
def test_a_datetime_bound_without_an_offset_or_with_z_is_utc(raw: str) -> None:
    assert parse_time_bound(raw, "tagged_before") == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)


def test_a_datetime_bound_keeps_its_offset() -> None:
    moment = parse_time_bound("2026-11-25T14:30:00+02:00", "created_before")

    assert moment.utcoffset() == timedelta(hours=2)
    assert moment == datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("field", ["created_after", "tagged_before"])
@pytest.mark.parametrize(
    "raw", ["", "yesterday", "2026-13-01", "2026-11-31", "25/11/2026", "2026-11-25T25:00"]
)
def test_a_garbage_time_bound_is_invalid_input_naming_the_field(raw: str, field: str) -> None:
    with pytest.raises(InvalidInput, match="ISO 8601") as raised:
        parse_time_bound(raw, field)

    assert raised.value.field == field
    assert field in str(raised.value)


def test_parse_search_without_parameters_is_the_default_query() -> None:
    assert parse_search() == SearchQuery()


def test_parse_search_reads_every_parameter_from_text() -> None:
    query = parse_search(
        objects="Dog,cat",
        tags='"outdoor"',
        match="ALL",
        exclude="bus",
        untagged=False,
        min_confidence=0.5,
        source="model",
        model="yolov8n.pt@3b2c1f0e9d8a",
        tagged_by=" bob ",
        tagged_after="2024-05-01",
        tagged_before="2024-05-02T00:00:00+02:00",
        created_after="2024-04-01T10:00",
        created_before="2024-06-01",
        limit=10,
        cursor=encode_cursor(42),
    )

    assert query == SearchQuery(
        objects=("dog", "cat"),
        tags=("outdoor",),
        match=Match.ALL,
        exclude=("bus",),
        untagged=False,
        min_confidence=0.5,
        source=TagSource.MODEL,
        model=ModelRef("yolov8n.pt", "3b2c1f0e9d8a"),
        tagged_by="bob",
        tagged_after=datetime(2024, 5, 1, tzinfo=UTC),
        tagged_before=datetime(2024, 5, 1, 22, 0, tzinfo=UTC),
        created_after=datetime(2024, 4, 1, 10, 0, tzinfo=UTC),
        created_before=datetime(2024, 6, 1, tzinfo=UTC),
        limit=10,
        before_id=42,
    )


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"objects": " , "}, "objects"),
        ({"tags": ""}, "tags"),
        ({"exclude": '""'}, "exclude"),
        ({"match": "every"}, "match"),
        ({"source": "robot"}, "source"),
        ({"model": "yolo@"}, "model"),
        ({"tagged_by": "  "}, "tagged_by"),
        ({"tagged_after": "yesterday"}, "tagged_after"),
        ({"tagged_before": "2024-02-30"}, "tagged_before"),
        ({"created_after": "soon"}, "created_after"),
        ({"created_before": "05/01/2024"}, "created_before"),
        ({"created_after": "2024-05-02", "created_before": "2024-05-01"}, "created_after"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"untagged": True, "tags": "cat"}, "untagged"),
        ({"source": "human", "objects": "dog"}, "objects"),
        ({"tags": "cat", "exclude": "Cat"}, "exclude"),
    ],
)
def test_parse_search_refuses_bad_text_naming_the_parameter(
    parameters: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_search(**parameters)

    assert raised.value.field == field


# Cursors.

ids = st.integers(min_value=1, max_value=MAX_IMAGE_ID)


@given(ids)
def test_cursor_decodes_to_the_id_it_was_encoded_from(image_id: int) -> None:
    assert decode_cursor(encode_cursor(image_id)) == image_id


@given(ids)
def test_cursor_is_url_safe_ascii(image_id: int) -> None:
    cursor = encode_cursor(image_id)

    assert cursor.isascii()
    assert cursor.isalnum()


@pytest.mark.parametrize(
    "cursor",
    ["", "i", "x1f", "1f", "I1f", "ixyz", "i1.5", "i\u00a0", "cursor", "i0", "i00", "i-1"],
)
def test_garbage_cursor_is_invalid_input_on_the_cursor_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor)

    assert raised.value.field == "cursor"


def test_cursor_beyond_the_largest_id_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(f"i{MAX_IMAGE_ID + 1:x}")


@given(st.text() | st.from_regex(r"i[0-9a-fA-FxX_ +-]{0,40}", fullmatch=True))
@example("i 1f")
@example("i0x1f")
@example("i01")
@example("i1_f")
@example("i+1f")
@example("i1F")
def test_only_cursors_that_encode_produced_are_accepted(text: str) -> None:
    try:
        image_id = decode_cursor(text)
    except InvalidInput:
        return
    assert image_id > 0
    assert encode_cursor(image_id) == text
