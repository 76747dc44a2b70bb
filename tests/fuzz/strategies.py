"""Hypothesis strategies for /v2 inputs: hostile text, and the spec's valid forms written out
here from the specs themselves (not imported from Dockyard), so they can serve as an oracle."""

from __future__ import annotations

import hashlib
import re

from hypothesis import strategies as st

# The distribution spec's grammars, as the spec writes them.
NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{NAME_COMPONENT}(?:/{NAME_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# RFC 6838 section 4.2, which the OCI image spec requires of mediaType and artifactType.
RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(rf"{RESTRICTED_NAME}/{RESTRICTED_NAME}")
# Dockyard's one addition: the first component names a workspace, at most 64 characters.
MAX_WORKSPACE = 64

# Values that have broken registries before: NUL, separators, traversal, escapes, overlong.
SPECIAL = [
    "",
    "\u0000",
    "a\u0000b",
    ".",
    "..",
    "../..",
    "/",
    "//",
    "%",
    "%00",
    "%2F",
    "?",
    "#",
    ";",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\u00b2",
    "\u00e9",
    "\ufffd",
    "\U0001f433",
    "sha256:",
    "sha256:" + "a" * 64,
    "SHA256:" + "A" * 64,
    "-1",
    "1e400",
    "NaN",
    "9" * 40,
    "a" * 256,
    "x" * 2000,
]

# Any text a URL or JSON can carry: every code point UTF-8 encodes (surrogates only in JSON).
any_char = st.characters(codec="utf-8")
hostile_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(any_char, max_size=40),
    st.text(st.sampled_from("aA0._-/:@+ \u0000"), min_size=1, max_size=300),
)
# Header values must be printable ASCII for the client (it refuses control characters).
ascii_text = st.one_of(
    st.sampled_from([s for s in SPECIAL if all(0x20 <= ord(c) < 0x7F for c in s)]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
)


def _valid_name(name: str) -> bool:
    return len(name) <= 255 and len(name.split("/", 1)[0]) <= MAX_WORKSPACE


valid_names = st.from_regex(NAME_RE, fullmatch=True).filter(_valid_name)
valid_tags = st.from_regex(TAG_RE, fullmatch=True)
valid_media_types = st.one_of(
    st.sampled_from(
        [
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.example.sbom.v1+json",
            "a" * 127 + "/" + "b" * 127,
        ]
    ),
    st.from_regex(MEDIA_TYPE_RE, fullmatch=True),
)


def is_media_type(value: object) -> bool:
    return isinstance(value, str) and MEDIA_TYPE_RE.fullmatch(value) is not None


def _mutated(value: str, insert: str, at: int) -> str:
    at = at % (len(value) + 1)
    return value[:at] + insert + value[at:]


names = st.one_of(
    valid_names,
    st.builds(_mutated, valid_names, hostile_text, st.integers(0, 300)),
    hostile_text,
    st.builds(lambda n: "w" * n + "/tool", st.integers(60, 70)),
)
references = st.one_of(
    valid_tags,
    st.builds(_mutated, valid_tags, hostile_text, st.integers(0, 130)),
    hostile_text,
    st.binary(max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
)
digests = st.one_of(
    st.binary(max_size=16).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
    st.binary(max_size=16).map(lambda b: "sha512:" + hashlib.sha512(b).hexdigest()),
    st.builds(lambda h, cut: "sha256:" + h[:cut], st.just("ab" * 40), st.integers(0, 80)),
    st.builds(lambda algorithm, rest: f"{algorithm}:{rest}", hostile_text, hostile_text),
    hostile_text,
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=0, max_value=20).map(str),
    hostile_text,
)
range_headers = st.one_of(
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.just(""), st.integers(0, 2**70).map(str)),
        st.one_of(st.just(""), st.integers(0, 2**70).map(str)),
    ),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 80), st.integers(0, 80)),
    ascii_text,
)
content_ranges = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 2**70), st.integers(0, 2**70)),
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 20), st.integers(0, 20)),
    ascii_text,
)
