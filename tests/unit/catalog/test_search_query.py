"""The search language (:mod:`dockyard.catalog.search_query`): terms read, bad ones refused
with a message naming them, and the loose version order packages are compared by."""

from __future__ import annotations

import pytest

from dockyard.catalog.search_query import Label, Package, compare_versions, name_key, parse, version_matches
from dockyard.errors import Invalid


def test_terms_are_read() -> None:
    q = parse('samtools>=1.19 python=3.11 label:org.opencontainers.image.source=* "bwa mem" pkg:Py_Torch')
    assert q.words == ["bwa", "mem"]
    assert q.packages == [
        Package(None, "samtools", ">=", "1.19"),
        Package(None, "python", "=", "3.11"),
        Package(None, "py_torch", None, None),
    ]
    assert q.labels == [Label("org.opencontainers.image.source", "*")]
    facets = parse("workspace:lab source:cached type:bench platform:linux/arm64/v8")
    assert (facets.workspace, facets.source, facets.kind, facets.platform) == (
        "lab",
        "cached",
        "bench",
        "linux/arm64/v8",
    )
    assert facets.on_versions
    assert not parse("workspace:lab").on_versions
    assert parse("label:maintainer").labels == [Label("maintainer", None)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("x" * 501, "longer than 500"),
        (" ".join(["a"] * 21), "more than 20 terms"),
        ("a\x00b", "NUL"),
        ("colour:red", "unknown filter colour:"),
        ("source:elsewhere", "source is one of"),
        ("type:x", "type is one of"),
        ("platform:x86", "platform is os/arch"),
        ("label:", "label term"),
        ("pkg:", "package term"),
        ("type:tool type:bench", "given twice"),
        ("'open", "cannot be read"),
        ("!!", "no word"),
    ],
)
def test_bad_queries_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse(text)
    assert says in str(refused.value)


def test_a_package_name_matches_as_stored_and_in_its_pep_503_form() -> None:
    """deb, apk, rpm, conda and R names are stored lower-cased only (``data.table``,
    ``libssl1.1``); Python names in their PEP 503 form: a term matches either."""
    assert name_key("Py_Torch.Lightning") == "py_torch.lightning"
    assert parse("pkg:Py_Torch.Lightning").packages[0].keys == ("py_torch.lightning", "py-torch-lightning")
    assert parse("data.table>=1.14").packages[0].keys == ("data.table", "data-table")
    assert parse("samtools>=1.19").packages[0].keys == ("samtools",)


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.19", "1.19.0", 0),
        ("1.10", "1.9", 1),
        ("1.0~rc1", "1.0", -1),  # Debian: ~ before the release
        ("1.0rc1", "1.0", -1),  # PEP 440 pre-release
        ("1.0.post1", "1.0", 1),
        ("2:1.0", "3.0", 1),  # the epoch first
        ("1.19-2", "1.19-10", -1),  # Debian revisions as numbers
        ("3.11.7", "3.12", -1),
        ("1.2.3-1.el9", "1.2.3-1.el8", 1),  # rpm release
    ],
)
def test_versions_are_ordered_loosely(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order


def test_operators() -> None:
    assert version_matches("3.11.7", "=", "3.11")  # a prefix of whole pieces
    assert not version_matches("3.1", "=", "3.11")
    assert version_matches("1.19.0", "==", "1.19")
    assert version_matches("1.20", ">", "1.19")
    assert version_matches("1.19", "<=", "1.19")
    assert version_matches("1.18", "!=", "1.19")
    assert not version_matches("1.18", ">=", "1.19")
