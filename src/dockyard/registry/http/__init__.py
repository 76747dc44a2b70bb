"""The ``/v2`` HTTP edge: a thin ASGI router (hot paths skip framework overhead)."""
