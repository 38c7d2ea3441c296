import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagetag.domain.errors import InvalidInput
from imagetag.domain.images import MAX_LABEL_LENGTH
from imagetag.domain.labels import clean_label, generate_label, name_from_source
from imagetag.domain.objects import normalise_object_name

SHA = "0f170c4e218d3f31" * 4

sha256s = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
# Detected objects reach the label rule as object_names() gives them: normalised, distinct, sorted.
object_name_sets = st.lists(
    st.text(min_size=1).map(normalise_object_name).filter(bool), unique=True, max_size=30
).map(lambda names: tuple(sorted(names)))
short_object_name_sets = st.lists(
    st.from_regex(r"[a-z][a-z ]{0,18}[a-z]", fullmatch=True).map(normalise_object_name),
    min_size=1,
    max_size=5,
    unique=True,
).map(lambda names: tuple(sorted(names)))
path_segments = st.text(st.characters(exclude_characters="/\\?#%"), min_size=1, max_size=40)
url_sources = st.builds(
    lambda segments, query: "https://example.org/" + "/".join(segments) + query,
    st.lists(path_segments, max_size=4),
    st.sampled_from(["", "?x=1", "#top"]),
)
sources = st.none() | st.text(max_size=300) | url_sources
given_labels = st.text(max_size=MAX_LABEL_LENGTH * 2).filter(
    lambda text: 0 < len(" ".join(text.split())) <= MAX_LABEL_LENGTH
)


@given(given_labels, object_name_sets, sources, sha256s)
def test_given_label_is_kept_trimmed_with_inner_whitespace_collapsed_whatever_objects_or_source(
    label: str, objects: tuple[str, ...], source: str | None, sha256: str
) -> None:
    result = generate_label(given=label, objects=objects, source=source, sha256=sha256)

    assert result == " ".join(label.split())


@given(object_name_sets, sources, sha256s)
def test_generated_label_is_never_empty_always_trimmed_and_at_most_max_length(
    objects: tuple[str, ...], source: str | None, sha256: str
) -> None:
    label = generate_label(given=None, objects=objects, source=source, sha256=sha256)

    assert label
    assert label == label.strip()
    assert len(label) <= MAX_LABEL_LENGTH


@given(short_object_name_sets, sources, sha256s)
def test_detected_objects_take_precedence_over_source(
    objects: tuple[str, ...], source: str | None, sha256: str
) -> None:
    label = generate_label(given=None, objects=objects, source=source, sha256=sha256)

    assert label == ", ".join(objects)


@given(sources.filter(lambda s: 0 < len(name_from_source(s)) <= MAX_LABEL_LENGTH), sha256s)
def test_source_name_is_the_label_when_nothing_was_detected(source: str, sha256: str) -> None:
    label = generate_label(given=None, objects=(), source=source, sha256=sha256)

    assert label == name_from_source(source)


@pytest.mark.parametrize("source", [None, "", "https://x.org/", "https://x.org", ".jpg", "_-_.png"])
def test_sha256_prefix_is_the_label_when_neither_objects_nor_source_name_anything(
    source: str | None,
) -> None:
    assert generate_label(given=None, objects=(), source=source, sha256=SHA) == "image 0f170c4e"


def test_generated_label_too_long_is_cut_to_max_length_with_an_ellipsis() -> None:
    objects = tuple(f"object number {n:03d}" for n in range(40))

    label = generate_label(given=None, objects=objects, source=None, sha256=SHA)

    assert len(label) == MAX_LABEL_LENGTH
    assert label.endswith("\u2026")
    assert label.startswith("object number 000, object number 001")


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u3000"])
def test_blank_given_label_is_invalid_input_on_the_label_field(blank: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        generate_label(given=blank, objects=("dog",), source="dog.jpg", sha256=SHA)

    assert raised.value.field == "label"


def test_given_label_longer_than_max_length_is_invalid_rather_than_cut() -> None:
    with pytest.raises(InvalidInput):
        clean_label("x" * (MAX_LABEL_LENGTH + 1))


def test_given_label_of_exactly_max_length_is_kept() -> None:
    assert clean_label(" " + "x" * MAX_LABEL_LENGTH + " ") == "x" * MAX_LABEL_LENGTH


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("https://x.org/a/my_dog-photo.jpg?x=1", "my dog photo"),
        ("https://x.org/a/b.jpg#section", "b"),
        ("https://x.org/pics/big%20cat.gif", "big cat"),
        ("https://x.org/albums/summer/", "summer"),
        ("https://x.org/", ""),
        ("holiday.photo.png", "holiday photo"),
        ("Red+Bus.webp", "Red Bus"),
        ("/srv/images/street  scene.JPEG", "street scene"),
        ("C:\\Users\\me\\Pictures\\cat_on_mat.jpeg", "cat on mat"),
        ("no-extension", "no extension"),
        (".jpg", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_name_from_source_is_the_file_stem_with_separators_as_single_spaces(
    source: str | None, name: str
) -> None:
    assert name_from_source(source) == name


@given(sources)
def test_name_from_source_is_trimmed_and_has_no_runs_of_whitespace(source: str | None) -> None:
    name = name_from_source(source)

    assert name == " ".join(name.split())
