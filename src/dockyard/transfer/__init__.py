"""Moving images in and out: tar import and export, external import, and the upstream
registry client that verifies external references (:mod:`dockyard.upstream.client`)."""
