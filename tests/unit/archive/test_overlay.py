"""Layers merged as a runtime merges them: whiteouts and opaque folders honoured."""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.archive.overlay import Overlay


def merged(*layers: Sequence[tuple[str, bool, str | None]]) -> dict[str, str]:
    """Each layer: (name, is a directory, content kept or None)."""
    overlay: Overlay[str] = Overlay()
    for entries in layers:
        for name, is_dir, content in entries:
            if overlay.entry(name, is_dir=is_dir) and content is not None:
                overlay.keep(name, content)
        overlay.end_layer()
    return overlay.files


STATUS = "var/lib/dpkg/status"


def test_an_upper_file_replaces_a_lower_one() -> None:
    assert merged([(STATUS, False, "old")], [(STATUS, False, "new")]) == {STATUS: "new"}


def test_a_whiteout_deletes_a_lower_file() -> None:
    assert merged(
        [(STATUS, False, "old"), ("etc/x", False, "x")], [("var/lib/dpkg/.wh.status", False, None)]
    ) == {"etc/x": "x"}


def test_a_whiteout_of_a_folder_deletes_all_below_it() -> None:
    lower = [("opt/conda/conda-meta/a.json", False, "a"), ("opt/condax/conda-meta/b.json", False, "b")]
    assert merged(lower, [("opt/.wh.conda", False, None)]) == {"opt/condax/conda-meta/b.json": "b"}


def test_an_opaque_folder_hides_the_lower_content_not_its_own() -> None:
    lower = [("opt/conda/conda-meta/a.json", False, "a")]
    upper = [("opt/conda/.wh..wh..opq", False, None), ("opt/conda/conda-meta/c.json", False, "c")]
    assert merged(lower, upper) == {"opt/conda/conda-meta/c.json": "c"}


def test_a_layer_s_own_whiteout_does_not_hide_its_own_files() -> None:
    assert merged([("var/lib/dpkg/.wh.status", False, None), (STATUS, False, "mine")]) == {STATUS: "mine"}


def test_a_file_or_link_over_a_lower_folder_hides_its_content() -> None:
    lower = [("usr/lib/R/library/x/DESCRIPTION", False, "x")]
    assert merged(lower, [("usr/lib/R/library", False, None)]) == {}
    assert merged(lower, [("usr/lib/R/library/x/DESCRIPTION", False, None)]) == {}  # a link there now


def test_a_directory_entry_over_a_folder_keeps_its_content() -> None:
    lower = [("usr/lib/R/library/x/DESCRIPTION", False, "x")]
    assert merged(lower, [("usr/lib/R/library/", True, None)]) == {"usr/lib/R/library/x/DESCRIPTION": "x"}


def test_whiteouts_reach_every_layer_below() -> None:
    assert merged([(STATUS, False, "1")], [("etc/y", False, None)], [("var/lib/.wh.dpkg", False, None)]) == {}
