import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagetag.domain.errors import InvalidInput
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ImageQuery,
    Match,
    ObjectFilter,
    decode_cursor,
    encode_cursor,
)

VOCABULARY = ["dog", "cat", "bus", "person", "traffic light"]

object_sets = st.frozensets(st.sampled_from(VOCABULARY))
filter_names = st.lists(st.sampled_from(VOCABULARY), min_size=1, unique=True).map(tuple)
ids = st.integers(min_value=1, max_value=2**63 - 1)

# (id, objects) of a small catalogue: dog+cat, dog, cat, bus+person, nothing.
CATALOGUE = [
    (1, {"dog", "cat"}),
    (2, {"dog"}),
    (3, {"cat"}),
    (4, {"bus", "person"}),
    (5, set()),
]


def found(query: ImageQuery) -> list[int]:
    return [image_id for image_id, objects in CATALOGUE if query.includes(image_id, objects)]


def test_search_with_match_any_returns_images_with_at_least_one_object() -> None:
    query = ImageQuery(objects=ObjectFilter.parse("dog,cat", "any"))

    assert found(query) == [1, 2, 3]


def test_search_with_match_all_returns_only_images_with_every_object() -> None:
    query = ImageQuery(objects=ObjectFilter.parse("dog,cat", "all"))

    assert found(query) == [1]


def test_search_without_an_object_filter_returns_every_image() -> None:
    assert found(ImageQuery()) == [1, 2, 3, 4, 5]


def test_search_before_an_id_returns_only_older_images() -> None:
    assert found(ImageQuery(before_id=3)) == [1, 2]


@given(filter_names, object_sets)
def test_match_any_holds_exactly_when_the_name_sets_intersect(
    names: tuple[str, ...], objects: frozenset[str]
) -> None:
    assert ObjectFilter(names, Match.ANY).matches(objects) == bool(set(names) & objects)


@given(filter_names, object_sets)
def test_match_all_holds_exactly_when_the_names_are_a_subset_of_the_objects(
    names: tuple[str, ...], objects: frozenset[str]
) -> None:
    assert ObjectFilter(names, Match.ALL).matches(objects) == (set(names) <= objects)


@given(filter_names, object_sets)
def test_match_all_implies_match_any(names: tuple[str, ...], objects: frozenset[str]) -> None:
    if ObjectFilter(names, Match.ALL).matches(objects):
        assert ObjectFilter(names, Match.ANY).matches(objects)


@given(st.none() | filter_names, st.sampled_from(Match), st.none() | ids, ids, object_sets)
def test_query_includes_older_images_that_match_the_filter(
    names: tuple[str, ...] | None,
    match: Match,
    before_id: int | None,
    image_id: int,
    objects: frozenset[str],
) -> None:
    object_filter = ObjectFilter(names, match) if names else None
    query = ImageQuery(objects=object_filter, before_id=before_id)

    older = before_id is None or image_id < before_id
    matching = object_filter is None or object_filter.matches(objects)
    assert query.includes(image_id, objects) == (older and matching)


def test_query_defaults_to_the_default_page_size() -> None:
    assert ImageQuery().limit == DEFAULT_PAGE_SIZE


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
def test_query_limit_may_be_anything_from_one_to_the_maximum(limit: int) -> None:
    assert ImageQuery(limit=limit).limit == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_query_limit_outside_one_to_the_maximum_is_invalid(limit: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        ImageQuery(limit=limit)

    assert raised.value.field == "limit"


@pytest.mark.parametrize("before_id", [0, -5])
def test_query_before_a_non_positive_id_is_an_invalid_cursor(before_id: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        ImageQuery(before_id=before_id)

    assert raised.value.field == "cursor"


@given(ids)
def test_cursor_decodes_to_the_id_it_was_encoded_from(image_id: int) -> None:
    assert decode_cursor(encode_cursor(image_id)) == image_id


@given(ids)
def test_cursor_is_url_safe_ascii(image_id: int) -> None:
    cursor = encode_cursor(image_id)

    assert cursor.isascii()
    assert cursor.isalnum()


@pytest.mark.parametrize(
    "cursor", ["", "i", "x1f", "1f", "I1f", "ixyz", "i1.5", "i\u00a0", "cursor"]
)
def test_garbage_cursor_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor)

    assert raised.value.field == "cursor"


@given(st.text())
def test_decoding_any_text_either_gives_a_positive_id_or_raises_invalid_input(text: str) -> None:
    try:
        image_id = decode_cursor(text)
    except InvalidInput:
        return
    assert image_id > 0


@pytest.mark.parametrize("cursor", ["i0", "i00", "i-1"])
def test_cursor_for_a_non_positive_id_is_invalid_input_on_the_cursor_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor)

    assert raised.value.field == "cursor"


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
    assert encode_cursor(image_id) == text
