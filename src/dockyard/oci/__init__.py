"""Pure OCI vocabulary: digests, names, media types, manifests and spec error codes. No I/O."""
