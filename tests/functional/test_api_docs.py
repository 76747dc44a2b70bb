"""``/api/v1/docs`` works offline: the page loads Swagger UI's script and style sheet (and
everything else it names) from Dockyard itself, and each of those answers 200."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx

from tests.support.servers import RunningRegistry

# Every URL the page names: src/href attributes and the strings its script passes on
# (the OpenAPI document and the OAuth2 redirect page).
_URLS = re.compile(r"""(?:src|href)=["']([^"']+)["']|(?:url|oauth2RedirectUrl):\s*["']([^"']+)["']""")


def test_the_docs_page_loads_only_same_origin_files_that_answer(token_registry: RunningRegistry) -> None:
    base = f"{token_registry.url}/api/v1/docs"
    with httpx.Client(timeout=30) as http:
        page = http.get(base)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        named = [a or b for a, b in _URLS.findall(page.text)]
        assert any(url.endswith("swagger-ui-bundle.js") for url in named), named
        assert any(url.endswith(".css") for url in named), named
        for url in named:
            absolute = urljoin(base, url)
            assert urlsplit(absolute).netloc == token_registry.host, f"{url} is on another origin"
            fetched = http.get(absolute)
            assert fetched.status_code == 200, f"{url}: {fetched.status_code}"
            assert fetched.content, url
        assert http.get(f"{base}/assets/..%2F..%2Fsettings.py").status_code == 404
