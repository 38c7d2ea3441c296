"""Base64 image fields decoded a window at a time, as the whole-string decoder would."""

from __future__ import annotations

import base64
import binascii

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagetag.domain.errors import InvalidInput
from imagetag.entrypoints.http import upload_bodies
from imagetag.entrypoints.http.upload_bodies import decode_base64_field, json_value_given


class Body(msgspec.Struct):
    image: msgspec.Raw = msgspec.Raw()


def field_of(body: bytes) -> msgspec.Raw:
    return msgspec.json.decode(body, type=Body).image


@pytest.fixture(autouse=True)
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 characters a window: every test crosses many window boundaries.
    monkeypatch.setattr(upload_bodies, "_WINDOW", 8)


@given(st.binary(max_size=200))
def test_decoding_in_windows_gives_the_bytes_back(data: bytes) -> None:
    body = msgspec.json.encode({"image": base64.b64encode(data).decode()})
    with decode_base64_field(field_of(body), "image") as decoded:
        assert decoded.read() == data


@given(st.binary(min_size=1, max_size=60))
def test_escaped_slashes_are_json_and_decode_the_same(data: bytes) -> None:
    text = base64.b64encode(data).decode().replace("/", "\\/")
    body = ('{"image": "' + text + '"}').encode()
    with decode_base64_field(field_of(body), "image") as decoded:
        assert decoded.read() == data


@settings(max_examples=500)
@given(st.text(alphabet="ABCDabcd0123+/=%! \n", max_size=40))
def test_what_the_whole_string_decoder_refuses_is_refused(text: str) -> None:
    try:
        expected: bytes | None = binascii.a2b_base64(text.encode(), strict_mode=True)
    except binascii.Error:
        expected = None
    raw = field_of(msgspec.json.encode({"image": text}))
    if expected is None:
        with pytest.raises(InvalidInput, match="base64"):
            decode_base64_field(raw, "image")
    else:
        with decode_base64_field(raw, "image") as decoded:
            assert decoded.read() == expected


@pytest.mark.parametrize("text", ["aGVsbG8h=", "aGVsbG8h==", "aGVsbG8hYQ=="])
def test_surplus_padding_at_a_window_edge_is_read_as_the_whole_string_decoder_does(
    text: str,
) -> None:
    raw = field_of(msgspec.json.encode({"image": text}))
    with decode_base64_field(raw, "image") as decoded:
        assert decoded.read() == binascii.a2b_base64(text.encode(), strict_mode=True)


def test_padding_inside_the_string_is_refused_even_at_a_window_edge() -> None:
    # "aGk=" ends the first window exactly; more text after padding is not base64.
    raw = field_of(b'{"image": "aGk=aGk=aGk="}')
    with pytest.raises(InvalidInput, match="base64"):
        decode_base64_field(raw, "image")


@pytest.mark.parametrize("value", [b"12", b"true", b"[]", b'{"a": 1}'])
def test_a_value_that_is_no_string_is_refused(value: bytes) -> None:
    raw = field_of(b'{"image": ' + value + b"}")
    assert json_value_given(raw)
    with pytest.raises(InvalidInput, match="string of base64"):
        decode_base64_field(raw, "image")


def test_missing_and_null_are_not_given() -> None:
    assert not json_value_given(field_of(b"{}"))
    assert not json_value_given(field_of(b'{"image": null}'))
    assert json_value_given(field_of(b'{"image": ""}'))


def test_a_large_field_rolls_to_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_bodies, "_WINDOW", 4 * 1024)
    data = bytes(range(256)) * 8192  # 2 MiB, past the 1 MiB spool
    body = msgspec.json.encode({"image": base64.b64encode(data).decode()})
    with decode_base64_field(field_of(body), "image") as decoded:
        assert decoded._rolled  # type: ignore[attr-defined]
        assert decoded.read() == data
