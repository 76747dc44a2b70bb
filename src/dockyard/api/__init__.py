"""HTTP APIs outside /v2: the token endpoint (/auth/token) and the REST API (/api/v1)."""
