"""Parsing of tar headers: ustar fields, GNU base-256 sizes, pax records, and archive names.

Strict on purpose: a header whose checksum does not match, a number that is not octal,
a name that is not UTF-8 or a malformed pax record ends the import; no guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.archive.errors import InvalidArchive, UnsafeArchive

BLOCK = 512


def normalize_name(raw: str, what: str = "entry name") -> str:
    """The canonical archive path of ``raw``: no ``.``/empty components, refused if it escapes."""
    if not raw:
        raise UnsafeArchive(f"empty {what}")
    if "\0" in raw:
        raise UnsafeArchive(f"{what} {raw[:200]!r} contains a NUL byte")
    if "\\" in raw:
        raise UnsafeArchive(f"{what} {raw[:200]!r} contains a backslash")
    if raw.startswith("/"):
        raise UnsafeArchive(f"absolute path in the archive: {raw[:200]!r}")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"path traversal ('..') in the archive: {raw[:200]!r}")
    if not parts:
        return "."
    return "/".join(parts)


@dataclass(frozen=True)
class Header:
    name: str
    size: int
    typeflag: bytes
    linkname: str


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _octal(block[148:156], "checksum")
    except InvalidArchive:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored == unsigned:  # what every writer today stores: the signed sum is rarely needed
        return True
    return stored == unsigned - 2 * sum(b for b in block[:148] + block[156:] if b > 127)


def parse_header(block: bytes) -> Header:
    if not _checksum_ok(block):
        raise InvalidArchive("not a tar archive (header checksum mismatch)")
    name = block[0:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0":  # POSIX: a prefix field (GNU uses the bytes for times)
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return Header(
        name=decode(name, "entry name"),
        size=_size(block[124:136]),
        typeflag=block[156:157],
        linkname=decode(block[157:257].split(b"\0", 1)[0], "link name"),
    )


def decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidArchive(f"{what} is not valid UTF-8: {raw[:100]!r}") from None


def _octal(field: bytes, what: str) -> int:
    text = field.replace(b"\0", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArchive(f"not a tar archive (invalid {what} field {field!r})") from None


def _size(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256, used for entries of 8 GiB and more
        if field[0] == 0xFF:
            raise InvalidArchive("negative entry size in a tar header")
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    return _octal(field, "size")


def parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # some writers pad the record block with NULs
            if data[pos:].strip(b"\0"):
                raise InvalidArchive("malformed pax header")
            break
        space = data.find(b" ", pos)
        # bytes.isdigit is ASCII only; a record is no longer than the header (a few digits).
        if space < 0 or not data[pos:space].isdigit() or space - pos > 18:
            raise InvalidArchive("malformed pax header (record length)")
        length = int(data[pos:space])
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise InvalidArchive("malformed pax header (record bounds)")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep:
            raise InvalidArchive("malformed pax header (no '=')")
        name = decode(key, "pax key")
        if name.startswith("GNU.sparse."):
            raise UnsafeArchive("sparse files are not supported in archives")
        records[name] = decode(value, f"pax {name}")
        pos = end
    return records


def looks_like_tar(head: bytes) -> bool:
    """Whether ``head`` (at least the first 512 bytes of a stream) starts a tar archive."""
    if len(head) < BLOCK:
        return False
    block = head[:BLOCK]
    # An empty tar (an empty layer) is 1024 zero bytes.
    return not block.strip(b"\0") or _checksum_ok(block)
