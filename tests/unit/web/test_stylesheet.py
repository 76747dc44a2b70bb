"""The web UI's one stylesheet parses as written: every block it opens is closed where its
section ends. (An unclosed ``@media (max-width: 760px) {`` once put every rule after it, the
build log's among them, into narrow windows only, and the build log page grew 19,000 px wide.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STYLESHEET = Path(__file__).resolve().parents[3] / "src" / "dockyard" / "web" / "static" / "app.css"


def _blocks(text: str) -> list[tuple[int, int, str]]:
    """(line, depth inside it, the line) for every line of the stylesheet, comments removed."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    depth, found = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        found.append((number, depth, line))
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"app.css line {number} closes a block that was never opened"
    assert depth == 0, "app.css ends inside an unclosed block"
    return found


def test_every_block_is_closed() -> None:
    _blocks(STYLESHEET.read_text())


def test_media_queries_hold_rules_not_other_media_queries_or_sections() -> None:
    text = STYLESHEET.read_text()
    for number, depth, line in _blocks(text):
        if line.lstrip().startswith("@media"):
            assert depth == 0, f"app.css line {number}: a media query inside another block"
    # A section heading comment is written at the top level, never inside a media query.
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("/*") and depth:
            pytest.fail(f"app.css line {number}: a section starts inside an unclosed block: {line[:60]}")
        depth += line.count("{") - line.count("}")
