"""The TRS endpoint's query values: paging numbers are bounded whole numbers, texts bounded."""

from __future__ import annotations

import pytest

from dockyard.api.trs import params
from dockyard.errors import Invalid


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e3", "1.0", "-1", "+1", " 1", "\u0661", ""]
)
def test_paging_numbers_are_plain_digits(value: str) -> None:
    with pytest.raises(Invalid, match="whole number"):
        params.offset_of(value)
    with pytest.raises(Invalid, match="whole number"):
        params.limit_of(value)


def test_paging_bounds() -> None:
    assert (params.offset_of(None), params.limit_of(None)) == (0, params.MAX_LIMIT)
    assert (params.offset_of("0"), params.offset_of(str(params.MAX_OFFSET))) == (0, params.MAX_OFFSET)
    assert (params.limit_of("1"), params.limit_of("1000")) == (1, 1000)
    for bad_offset in (str(params.MAX_OFFSET + 1), "9" * 13):
        with pytest.raises(Invalid, match="offset"):
            params.offset_of(bad_offset)
    for bad_limit in ("0", "1001"):
        with pytest.raises(Invalid, match="limit"):
            params.limit_of(bad_limit)


def test_texts_and_flags() -> None:
    assert params.text_of("name", "x" * 255) == "x" * 255
    for bad in ("x" * 256, "a\x00b"):
        with pytest.raises(Invalid, match="name"):
            params.text_of("name", bad)
    assert [params.flag_of("checker", v) for v in (None, "true", "FALSE")] == [None, True, False]
    with pytest.raises(Invalid, match="checker"):
        params.flag_of("checker", "1")
