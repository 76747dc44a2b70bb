"""The one table that gives each refusal of the pure OCI layer its spec code."""

from __future__ import annotations

import json

import pytest

from dockyard.oci.errors import (
    ErrorCode,
    InvalidDigest,
    InvalidManifest,
    InvalidMediaType,
    InvalidName,
    InvalidTag,
    InvalidValue,
)
from dockyard.registry.http.errors import OCI_CODES, render, translate_value


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidDigest("bad digest"), "DIGEST_INVALID", 400),
        (InvalidName("bad name"), "NAME_INVALID", 400),
        (InvalidTag("bad tag"), "TAG_INVALID", 400),
        (InvalidManifest("bad manifest"), "MANIFEST_INVALID", 400),
        (InvalidMediaType("bad media type"), "MANIFEST_INVALID", 400),
    ],
)
def test_each_refusal_has_its_spec_code_and_keeps_its_message(
    error: InvalidValue, code: str, status: int
) -> None:
    translated = translate_value(error)
    assert translated.code.wire_code == code
    assert translated.message == error.message
    got_status, body, headers = render(translated)
    assert got_status == status
    assert json.loads(body) == {"errors": [{"code": code, "message": error.message, "detail": None}]}
    assert headers["Content-Type"] == "application/json"


def test_every_kind_of_refusal_is_in_the_table() -> None:
    kinds = {kind for kind in InvalidValue.__subclasses__() if kind.__module__ == InvalidValue.__module__}
    assert set(OCI_CODES) == kinds


def test_a_kind_missing_from_the_table_is_answered_as_a_bug(caplog: pytest.LogCaptureFixture) -> None:
    class Unmapped(InvalidValue):
        pass

    assert translate_value(Unmapped("x")).code is ErrorCode.UNKNOWN
    assert "Unmapped" in caplog.text
