"""A TRS v2 client for tests: every body it reads is validated against the published GA4GH
TRS v2.0.1 OpenAPI document (``openapi.yaml``, vendored unchanged, see README.md) before a
test looks at it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx
import yaml
from jsonschema import Draft202012Validator

HERE = Path(__file__).parent
OPENAPI: dict[str, Any] = yaml.safe_load((HERE / "openapi.yaml").read_text())
PREFIX = "/ga4gh/trs/v2"

# The array answers of the paths, by the names the tests use for them.
LISTS = {
    "ToolList": "/tools",
    "ToolVersionList": "/tools/{id}/versions",
    "ToolClassList": "/toolClasses",
    "FileWrapperList": "/tools/{id}/versions/{version_id}/containerfile",
    "ToolFileList": "/tools/{id}/versions/{version_id}/{type}/files",
}


def _in_defs(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``#/components/schemas/X`` becomes
    ``#/$defs/X``. The TRS models use no ``nullable``, ``discriminator``, ``readOnly`` or
    ``writeOnly``; ``example``, ``default`` and ``format: int32`` are annotations."""
    if isinstance(schema, dict):
        return {
            key: (value.replace("#/components/schemas/", "#/$defs/") if key == "$ref" else _in_defs(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_in_defs(item) for item in schema]
    return schema


def _ok_schema(path: str) -> Any:
    return OPENAPI["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def _definitions() -> dict[str, Any]:
    found = _in_defs(OPENAPI["components"]["schemas"])
    found.update({name: _in_defs(_ok_schema(path)) for name, path in LISTS.items()})
    found["ImageDataList"] = found["ToolVersion"]["properties"]["images"]  # a version's images
    # /service-info is a $ref to GA4GH service-info v1.0.0; its Service model, restated.
    found.update(json.loads((HERE / "service_info.schema.json").read_text())["$defs"])
    return cast(dict[str, Any], found)


DEFINITIONS = _definitions()
for _schema in DEFINITIONS.values():
    Draft202012Validator.check_schema(_schema)


def check(body: Any, model: str) -> Any:
    """``body`` if it is a valid TRS ``model`` (a schema of the TRS OpenAPI document's
    components, a list in :data:`LISTS`, or ``ImageDataList``); fails if not."""
    assert model in DEFINITIONS, f"no TRS model {model}"
    schema = {"$ref": f"#/$defs/{model}", "$defs": DEFINITIONS}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"not a TRS {model}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    return body


def check_list_headers(response: httpx.Response) -> httpx.Response:
    """``response`` (of ``GET /tools``) if its paging headers are as the document says:
    ``self_link``, ``last_page`` and (not on the last page) ``next_page`` URLs, ``current_offset``
    and ``current_limit`` with ``current_limit`` an integer."""
    declared = OPENAPI["paths"]["/tools"]["get"]["responses"]["200"]["headers"]
    for name, header in declared.items():
        value = response.headers.get(name)
        if value is None:
            assert name == "next_page", f"/tools answered without its {name} header"
            continue
        if header["schema"]["type"] == "integer":
            assert value.isdigit(), f"{name} is not an integer: {value!r}"
        elif name.endswith(("_page", "_link")):
            assert httpx.URL(value).is_absolute_url, f"{name} is not a URL: {value!r}"
    return response


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
        return check_list_headers(response)

    def tool_ids(self, **params: Any) -> list[str]:
        return [tool["id"] for tool in self.tools(**params).json()]
