"""Handlers of the /v2 routes: parse the request, call a service, write the response."""
