"""Canonical JSON: our fast path must be byte-identical to RFC 8785 (the rfc8785 package)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from aegisflow.canonical import MAX_SAFE_INT, canonical_bytes
from aegisflow.errors import InvalidEntry

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500)
@given(values)
def test_equals_rfc8785(value: object) -> None:
    assert canonical_bytes(value) == bytes(rfc8785.dumps(value))


def test_utf16_key_order_outside_the_bmp() -> None:
    # By code point U+FF61 sorts before U+1F600; by UTF-16 unit (0xD83D < 0xFF61) after.
    value = {"\U0001f600": 1, "\uff61": 2}
    data = canonical_bytes(value)
    assert data == bytes(rfc8785.dumps(value))
    assert data.index("\U0001f600".encode()) < data.index("\uff61".encode())


@pytest.mark.parametrize(
    "value", [1.0, {"a": float("nan")}, 2**53, {"k": "\udc00"}, {1: 2}, {"s": {1, 2}}]
)
def test_unsignable_values(value: object) -> None:
    with pytest.raises(InvalidEntry):
        canonical_bytes(value)
