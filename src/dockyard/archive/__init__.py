"""Image archives: read untrusted docker-save / OCI tars in one streaming pass, write tars
that ``docker load`` accepts. Pure: no HTTP, no database; storage is a caller's sink.

- ``safe_tar`` (+ ``tarheader``): streaming tar reader (plain, gzip, zstd) that refuses
  hostile archives.
- ``errors``: ``UnsafeArchive`` / ``InvalidArchive`` / ``DigestMismatch`` (all ``ValueError``).
- ``decompress``: sniffing and bounded-output gzip / zstd decompression.
- ``formats`` (+ ``images``, the result types): what images an archive holds, from its
  metadata files.
- ``compress``: compress a layer while hashing both sides.
- ``sink`` + ``ingest``: the two-phase import into a caller-provided ``BlobSink``.
- ``manifests``: the manifests to push for an imported image.
- ``tarwriter`` + ``docker_archive``: planned, resumable docker-archive and OCI tars.
"""
