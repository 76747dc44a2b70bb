"""Coordination between the processes and replicas of one Dockyard: the per-repository
generations that keep lookup caches correct (:mod:`.cache`), upload locks (:mod:`.locks`), named
leases for periodic work that one holder does at a time (:mod:`.leases`, table in
:mod:`.tables`), and the sockets through which sibling processes on one host hand each other
requests (:mod:`.siblings`). Knows no feature: features use it."""
