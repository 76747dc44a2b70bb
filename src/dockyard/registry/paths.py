"""Every storage path the registry uses is built here.

::

    <root>/
    ├── blobs/
    │   └── sha256/
    │       └── ab/                      first two hex characters
    │           └── abcdef…/data         the blob's bytes, named by content
    └── uploads/
        └── <uuid>/data                  an upload in progress (hashed while it streams)

Repositories hold no bytes: which repository may serve which blob ("links"), manifests
(bytes exactly as received), tags and upload sessions live in the metadata database.
"""

from __future__ import annotations

from dockyard.oci.digest import Digest


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def upload_dir(upload_id: str) -> str:
    return f"uploads/{upload_id}"


def upload_path(upload_id: str) -> str:
    return f"{upload_dir(upload_id)}/data"
