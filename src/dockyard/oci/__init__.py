"""Pure OCI vocabulary: digests, names, references, media types, manifests, byte ranges, and
the ``ValueError`` kinds that refuse bad values. No I/O, no HTTP codes."""
