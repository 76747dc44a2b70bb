"""Composition root: the only package that imports every layer and wires them together.

- :mod:`~dockyard.app.services`: every service of a process, built once (``build_services``).
- :mod:`~dockyard.app.asgi`: the ASGI app on those services (``create_app``, ``from_environment``).
- :mod:`~dockyard.app.lifespan`: start-up, background loops (``run_jobs``) and shutdown.
- :mod:`~dockyard.app.bootstrap`: token keys and the first admin.
- :mod:`~dockyard.app.health`: ``/healthz`` and ``/metrics``.
- :mod:`~dockyard.app.serving`: uvicorn with zero-copy file responses.
- :mod:`~dockyard.app.schema`: every feature's tables on one metadata.

Nothing is imported here, so that ``dockyard serve``'s supervisor process (which imports
:mod:`~dockyard.app.serving`) never loads the application. Nothing else holds module-level state.
"""
