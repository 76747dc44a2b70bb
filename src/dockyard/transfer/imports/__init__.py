"""Archive uploads: a ``docker save`` or OCI archive sent in chunks becomes images in the
registry. :mod:`.service` is the upload service (sessions, chunks, commit); :mod:`.sessions`,
:mod:`.live` and :mod:`.holders` keep an import in one process and route chunks to it;
:mod:`.runner`, :mod:`.feed`, :mod:`.checkpoint`, :mod:`.sink` (with :mod:`.writers` and
:mod:`.relay`) stream the tar into storage in one pass and survive restarts; :mod:`.outcomes`
records how an import ends; :mod:`.results` and :mod:`.versions` turn what was read into
manifests, tags and catalog versions; :mod:`.purge` and :mod:`.reclaim` clean up after expired or
crashed uploads. Table in :mod:`dockyard.transfer.tables`."""
