"""The API answers the registry's refusals (an archive's image pushed into it) and the values
the OCI grammar refuses as problem documents from its own table, never with the /v2 edge's
errors: each row names the spec code the /v2 edge answers the same error with (status, the
code as the type slug, the code's message as the title), so both edges tell a client the same."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from dockyard.api import problems
from dockyard.api.v1 import archives
from dockyard.http.problems import PROBLEMS
from dockyard.oci.errors import InvalidManifest, InvalidValue
from dockyard.registry import errors as registry_errors
from dockyard.registry.errors import ManifestBlobUnknown, RegistryRefusal
from dockyard.registry.http.errors import OCI_CODES, TRANSLATED, ErrorCode

REFUSALS = sorted(
    (
        kind
        for kind in vars(registry_errors).values()
        if isinstance(kind, type) and issubclass(kind, RegistryRefusal) and kind is not RegistryRefusal
    ),
    key=lambda kind: kind.__name__,
)


def _as_problem(code: ErrorCode) -> tuple[int, str, str]:
    return code.status, code.name.lower().replace("_", "-"), code.message


@pytest.mark.parametrize("kind", REFUSALS, ids=lambda kind: kind.__name__)
def test_each_refusal_of_the_registry_is_a_problem_named_after_its_spec_code(kind: type[Exception]) -> None:
    assert PROBLEMS[kind] == _as_problem(TRANSLATED[kind].code)


@pytest.mark.parametrize("kind", list(OCI_CODES), ids=lambda kind: kind.__name__)
def test_each_refused_value_is_a_problem_named_after_its_spec_code(kind: type[InvalidValue]) -> None:
    assert PROBLEMS[kind] == _as_problem(OCI_CODES[kind])


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    archives.install_problems(app)

    @app.post("/refused-value")
    async def refused_value() -> None:
        raise InvalidManifest("the manifest has no config")

    @app.post("/refused-push")
    async def refused_push() -> None:
        raise ManifestBlobUnknown("push the blobs first", "sha256:" + "a" * 64)

    return app


@pytest.mark.parametrize(
    ("path", "status", "slug", "title", "detail"),
    [
        ("/refused-value", 400, "manifest-invalid", "manifest invalid", "the manifest has no config"),
        (
            "/refused-push",
            404,
            "manifest-blob-unknown",
            "manifest references a manifest or blob unknown to registry",
            "push the blobs first",
        ),
    ],
)
async def test_the_api_answers_from_the_table(
    path: str, status: int, slug: str, title: str, detail: str
) -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.post(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://dockyard.dev/problems/" + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
