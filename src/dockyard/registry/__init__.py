"""The OCI Distribution API: blobs, uploads, manifests, tags, referrers, GC and events."""
