"""A TRS v2 client for tests: every body it reads is validated against the GA4GH models
(``trs_v2.schema.json``, see its README) before a test looks at it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from jsonschema import Draft202012Validator

SCHEMA = json.loads((Path(__file__).parent / "trs_v2.schema.json").read_text())
Draft202012Validator.check_schema(SCHEMA)
PREFIX = "/ga4gh/trs/v2"


def check(body: Any, model: str) -> Any:
    """``body`` if it is a valid TRS ``model`` (a name in the schema's ``$defs``); fails if not."""
    schema = {"$ref": f"#/$defs/{model}", "$defs": SCHEMA["$defs"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"not a TRS {model}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    return body


def tool_path(tool_id: str) -> str:
    return f"/tools/{quote(tool_id, safe='/')}"


class TrsClient:
    """``/ga4gh/trs/v2`` as one caller (``auth``: Basic pair, a Bearer token, or anonymous)."""

    def __init__(
        self, base_url: str, *, auth: tuple[str, str] | None = None, token: str | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url + PREFIX, auth=auth, headers=headers, timeout=60)

    def __enter__(self) -> TrsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, model: str, status: int = 200, **params: Any) -> Any:
        """The body of ``GET path`` answered with ``status``, checked as ``model`` (``Error``
        for any status but 200)."""
        response = self.http.get(path, params=params)
        assert response.status_code == status, f"GET {path}: {response.status_code} {response.text[:500]}"
        assert response.headers["content-type"].startswith("application/json"), response.headers
        return check(response.json(), model if status == 200 else "Error")

    def error(self, path: str, status: int, **params: Any) -> str:
        """The message of the TRS ``Error`` answered with ``status``; its code must be it."""
        body = self.get(path, "Error", status, **params)
        assert body["code"] == status, body
        message: str = body["message"]
        return message

    def tools(self, **params: Any) -> httpx.Response:
        response = self.http.get("/tools", params=params)
        assert response.status_code == 200, response.text[:500]
        check(response.json(), "ToolList")
        return response

    def tool_ids(self, **params: Any) -> list[str]:
        return [tool["id"] for tool in self.tools(**params).json()]
