"""Why an archive was refused.

``UnsafeArchive`` is for archives that try something hostile or exceed a limit (traversal,
links out, devices, bombs, oversize); ``InvalidArchive`` for archives that are merely
broken or inconsistent (bad JSON, missing files, digest mismatch). Both are ``ValueError``s
whose message is written for the person who uploaded the archive.
"""

from __future__ import annotations


class ArchiveError(ValueError):
    """Base of every refusal of an uploaded archive."""


class UnsafeArchive(ArchiveError):
    """The archive is hostile or exceeds a safety limit."""


class InvalidArchive(ArchiveError):
    """The archive is malformed or its parts contradict each other."""


class DigestMismatch(InvalidArchive):
    """A blob's content does not match the digest, size or diff_id its manifest declares."""
