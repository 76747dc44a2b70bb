"""Builds: Dockerfile images defined in Dockyard (a local context or a git repository),
built by a real engine on a worker, with live logs and a history.

:mod:`.definitions` (what to build, who may change it, its status), :mod:`.service`
(start, cancel, history, logs; the ``build`` job handler), :mod:`.builder` (the engine
Protocol) and :mod:`.buildah` (the buildah engine)."""
