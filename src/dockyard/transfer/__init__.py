"""Moving images as files: archive uploads in (:mod:`.imports`) and archive downloads out
(:mod:`.exports`). The tar format itself is :mod:`dockyard.archive`; other registries are
:mod:`dockyard.upstream`."""
