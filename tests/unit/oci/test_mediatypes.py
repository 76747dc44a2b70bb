"""Media type names against RFC 6838 section 4.2, which the OCI image spec requires of every
``mediaType`` and ``artifactType``: ``type/subtype``, each 1 to 127 restricted characters."""

from __future__ import annotations

import pytest

from dockyard.oci import mediatypes as mt
from dockyard.oci.errors import InvalidMediaType


@pytest.mark.parametrize(
    "value",
    [
        mt.OCI_MANIFEST,
        mt.OCI_EMPTY,
        mt.DOCKER_MANIFEST_LIST,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        "text/plain",
        "Application/JSON",
        "a/b",
        "0/9",
        "x/a!#$&^_.+-",
        "a" * 127 + "/" + "b" * 127,
    ],
)
def test_valid_media_types(value: str) -> None:
    assert mt.is_media_type(value)
    assert mt.validate_media_type(value) == value
    assert len(value) <= mt.MAX_MEDIA_TYPE_LENGTH


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("application", id="no-subtype"),
        pytest.param("application/", id="empty-subtype"),
        pytest.param("/json", id="empty-type"),
        pytest.param("a/b/c", id="two-slashes"),
        pytest.param("a" * 128 + "/b", id="type-128-characters"),
        pytest.param("a/" + "b" * 128, id="subtype-128-characters"),
        pytest.param("application/json; charset=utf-8", id="parameters"),
        pytest.param("application/json ", id="trailing-space"),
        pytest.param("application/json\n", id="trailing-newline"),
        pytest.param("application/js\u0000on", id="nul"),
        pytest.param("application/\ud800", id="lone-surrogate"),
        pytest.param("application/caf\u00e9", id="non-ascii"),
        pytest.param("application/.json", id="subtype-starts-with-dot"),
        pytest.param("-application/json", id="type-starts-with-dash"),
        pytest.param("application/js*on", id="star"),
    ],
)
def test_invalid_media_types(value: str) -> None:
    assert not mt.is_media_type(value)
    with pytest.raises(InvalidMediaType) as info:
        mt.validate_media_type(value)
    assert "RFC 6838" in info.value.message
    assert len(info.value.message) < 400


def test_invalid_media_type_message_is_bounded() -> None:
    with pytest.raises(InvalidMediaType) as info:
        mt.validate_media_type("x" * 100_000)
    assert len(info.value.message) < 400
