"""Canonical encoding, PAE and strict base64."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.encoding import b64decode, b64encode, canonical_json, digest, pae
from schemas.problems import InvalidEnvelope


def test_pae_layout_is_length_prefixed() -> None:
    assert pae("t", b"ab") == (
        b"SGX-PAE-v1"
        + (2).to_bytes(8, "little")
        + (1).to_bytes(8, "little")
        + b"t"
        + (2).to_bytes(8, "little")
        + b"ab"
    )


@given(st.lists(st.binary(max_size=20), max_size=4), st.lists(st.binary(max_size=20), max_size=4))
def test_pae_is_injective(a: list[bytes], b: list[bytes]) -> None:
    if a != b:
        assert pae("x", *a) != pae("x", *b)


def test_domain_separation_changes_digest() -> None:
    assert digest("a", b"m") != digest("b", b"m")
    assert len(digest("a", b"m")) == 32


def test_canonical_json_sorts_keys_and_strips_space() -> None:
    expected = '{"a":[true,null,"é"],"b":1}'.encode()
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == expected


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(InvalidEnvelope):
        canonical_json({"x": float("nan")})


@given(st.binary(max_size=64))
def test_base64_round_trip(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("text", ["AB==", "QQ", "QQ=", "Q Q==", "QR==", "*", "QUJD\n"])
def test_base64_refuses_non_canonical(text: str) -> None:
    with pytest.raises(InvalidEnvelope):
        b64decode(text)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_values)
def test_fast_path_matches_rfc8785_reference(value: object) -> None:
    """The C-encoder fast path and the reference implementation agree byte for byte."""
    import rfc8785

    try:
        reference = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(InvalidEnvelope):
            canonical_json(value)  # type: ignore[arg-type]
        return
    assert canonical_json(value) == reference  # type: ignore[arg-type]


def test_astral_keys_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\uff61": 2}
    import rfc8785

    assert canonical_json(value) == rfc8785.dumps(value)


@given(_json_values)
def test_loads_canonical_accepts_exactly_canonical_bytes(value: object) -> None:
    from schemas.encoding import loads_canonical

    try:
        data = canonical_json(value)  # type: ignore[arg-type]
    except InvalidEnvelope:
        return
    assert loads_canonical(data) == value or value != value
    if isinstance(value, dict) and value:
        spaced = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
        if spaced != data:
            with pytest.raises(InvalidEnvelope):
                loads_canonical(spaced)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":1}',
        b'{"b":1,"a":2}',
        b'{"a":1.5}',
        b'{"a":NaN}',
        b'{"a":9007199254740993}',
        b'{"a": 1}',
        b'{"a":"\\u0041"}',
    ],
)
def test_loads_canonical_refuses_non_canonical(data: bytes) -> None:
    from schemas.encoding import loads_canonical

    with pytest.raises(InvalidEnvelope):
        loads_canonical(data)
