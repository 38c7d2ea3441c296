import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imagetag.domain.objects import normalise_object_name, parse_object_names

QUOTES = ['"', "'", "`", "\u2018", "\u2019", "\u201c", "\u201d"]

ascii_text = st.text(st.characters(codec="ascii"))
# Names as people type them: words, case, spaces and underscores, but no quotes or commas.
typed_names = st.from_regex(r"[ _]*[A-Za-z][A-Za-z _]{0,20}", fullmatch=True)


@pytest.mark.parametrize(
    "raw",
    ["traffic light", "Traffic_Light", " traffic  light ", "TRAFFIC\tLIGHT", '"traffic light"'],
)
def test_spellings_of_one_object_normalise_to_the_same_name(raw: str) -> None:
    assert normalise_object_name(raw) == "traffic light"


@pytest.mark.parametrize("quote", QUOTES)
def test_normalisation_strips_surrounding_quotes(quote: str) -> None:
    assert normalise_object_name(f" {quote}Dog{quote} ") == "dog"


def test_normalisation_folds_case_beyond_ascii() -> None:
    assert normalise_object_name("STRASSE") == normalise_object_name("Straße") == "strasse"


def test_normalisation_composes_unicode() -> None:
    assert normalise_object_name("cafe\u0301") == normalise_object_name("caf\u00e9")


@pytest.mark.parametrize("raw", ["", "   ", '""', "' '", "__", "\u201c\u201d"])
def test_nothing_but_blanks_quotes_and_underscores_normalises_to_empty(raw: str) -> None:
    assert normalise_object_name(raw) == ""


@given(st.text())
@example("\u1ff6")  # folds to two code points that NFC composes back into one
def test_normalised_name_is_trimmed_casefolded_and_single_spaced(raw: str) -> None:
    name = normalise_object_name(raw)

    assert name == " ".join(name.split())
    assert "_" not in name
    # Case-folded up to composition: "ῶ" folds to "ω" + U+0342, which NFC composes back.
    assert name == unicodedata.normalize("NFC", name.casefold())


@given(ascii_text)
def test_normalisation_is_case_insensitive(raw: str) -> None:
    assert normalise_object_name(raw.upper()) == normalise_object_name(raw.lower())


@given(typed_names, st.sampled_from(QUOTES), st.text(" \t", max_size=3))
def test_quoted_and_padded_name_normalises_like_the_bare_name(
    raw: str, quote: str, padding: str
) -> None:
    assert normalise_object_name(f"{padding}{quote}{raw}{quote}{padding}") == (
        normalise_object_name(raw)
    )


@given(st.text())
@example("_'dog")
@example("' 'dog")
def test_normalisation_is_idempotent(raw: str) -> None:
    once = normalise_object_name(raw)

    assert normalise_object_name(once) == once


@given(typed_names)
def test_normalisation_is_idempotent_for_names_without_quotes(raw: str) -> None:
    once = normalise_object_name(raw)

    assert normalise_object_name(once) == once


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ('"dog,cat"', ("dog", "cat")),
        ("dog,cat", ("dog", "cat")),
        ("'dog', 'cat'", ("dog", "cat")),
        ("Dog, cat ,DOG", ("dog", "cat")),
        ("traffic_light,,  ,Traffic Light", ("traffic light",)),
        (["dog,cat", "bird", "CAT"], ("dog", "cat", "bird")),
        (" , ,", ()),
        ("", ()),
        ([], ()),
    ],
)
def test_parse_object_names_splits_on_commas_normalises_and_deduplicates(
    raw: str | list[str], names: tuple[str, ...]
) -> None:
    assert parse_object_names(raw) == names


@given(st.lists(typed_names))
def test_parse_object_names_keeps_each_name_once_in_first_seen_order(typed: list[str]) -> None:
    normalised = [normalise_object_name(name) for name in typed]
    expected = tuple(dict.fromkeys(name for name in normalised if name))

    assert parse_object_names(",".join(typed)) == expected
    assert parse_object_names(typed) == expected
