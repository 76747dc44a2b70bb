"""Other registries: the Distribution API client (:mod:`.client`, with :mod:`.session` for token
auth and :mod:`.wire` for responses, :mod:`.results` for outcomes), the credentials a workspace
keeps for them, encrypted (:mod:`.credentials`, table in :mod:`.tables`), and the resolver the
catalog verifies external versions with (:mod:`.verifier`). Every connection goes through the
outbound policy (:mod:`dockyard.outbound`)."""
