"""The vendored TRS v2 OpenAPI document is the one Dockyard serves, and its validation bites."""

from __future__ import annotations

import pytest

from dockyard.api.trs.app import TRS_VERSION
from tests.support.trs import LISTS, OPENAPI, check


def test_the_vendored_document_is_the_served_trs_version() -> None:
    assert OPENAPI["info"]["version"] == TRS_VERSION
    assert OPENAPI["servers"] == [{"url": "/ga4gh/trs/v2"}]
    assert set(LISTS.values()) <= set(OPENAPI["paths"])


@pytest.mark.parametrize(
    ("body", "model"),
    [
        ({"url": "u", "id": "i", "organization": "o", "toolclass": {}}, "Tool"),  # no versions
        ({"url": "u", "id": "i", "descriptor_type": [""]}, "ToolVersion"),  # "" is no descriptor type
        ({"url": "u", "id": "i", "images": [{"image_type": "OCI"}]}, "ToolVersion"),
        ({"url": "u", "id": "i", "images": [{"size": "12"}]}, "ToolVersion"),
        ([{"checksum": [{"checksum": "ab"}]}], "FileWrapperList"),  # a checksum without its type
        ({"message": "no code"}, "Error"),
    ],
)
def test_bodies_the_document_refuses_are_refused(body: object, model: str) -> None:
    with pytest.raises(AssertionError, match=f"not a TRS {model}"):
        check(body, model)


def test_a_descriptor_less_version_has_an_empty_descriptor_type() -> None:
    check({"url": "u", "id": "i", "descriptor_type": [], "containerfile": True}, "ToolVersion")
