"""Search (``GET /api/v1/search``, ``dockyard search``) on a running server, SQLite and
PostgreSQL: words ranked over names, descriptions, labels, annotations and image history;
package terms with versions compared; label globs; facets counted over what the caller sees;
private images in no result, facet or count of someone who may not pull them; bad queries 422.

Package rows are written straight into the server's database: filling them from the image
is the package indexer's work (and tests), searching them is this one's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.catalog import CatalogUser, gzip_layer, new_user, problem
from tests.support.cli import Cli
from tests.support.database import sql
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import OCI_CONFIG, Blob, encode, oci_manifest
from tests.support.servers import RunningRegistry

Json = dict[str, Any]
SOURCE_LABEL = "org.opencontainers.image.source"


def config(labels: dict[str, str], history: list[str]) -> Blob:
    document: Json = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {**labels, "test.unique": unique("cfg")}},
        "history": [{"created_by": line} for line in history],
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return Blob(encode(document), OCI_CONFIG)


@dataclass(frozen=True)
class World:
    """Workspace ``lab`` (``owner``; ``reader`` a reader) and ``other`` (the owner's):

    lab/aligner:v1 pushed (labels, annotations, history; samtools 1.17, python 3.12.1),
    lab/bwa 0.7.17 external, "Burrows-Wheeler aligner for short reads" (samtools 1.19,
    python 3.11.7), lab/secret 1.0 external private "hidden aligner" (samtools 1.20),
    other/public-bwa 1.0 external public (samtools 1.21).
    """

    registry: RunningRegistry
    owner: str
    reader: str
    outsider: str
    lab: str
    other: str


def _packages(
    registry: RunningRegistry, image: str, version: str, found: dict[str, str], ecosystem: str = "deb"
) -> None:
    version_id = sql(
        registry,
        "SELECT v.id FROM image_versions v JOIN images i ON i.id = v.image_id "
        "WHERE i.name = :n AND v.version = :v",
        n=image,
        v=version,
    )[0][0]
    for name, package_version in found.items():
        sql(
            registry,
            "INSERT INTO version_packages (version_id, ecosystem, name, name_key, version, platform) "
            "VALUES (:id, :ecosystem, :name, :key, :version, 'linux/amd64')",
            id=version_id,
            ecosystem=ecosystem,
            name=name,
            key=name.lower(),
            version=package_version,
        )


@pytest.fixture(scope="module")
def world(token_registry: RunningRegistry) -> World:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner, reader, outsider = (new_user(admin, label) for label in ("owner", "reader", "outsider"))
    with CatalogUser.connect(token_registry, owner) as user:
        lab, other = user.new_workspace("lab"), user.new_workspace("other")
        user.api.set_member(lab, reader, "reader")
        labels = {SOURCE_LABEL: "https://github.com/lh3/aligner", "maintainer": "genomics team"}
        history = ["RUN /bin/sh -c apt-get install -y zlib1g-dev", 'CMD ["aligner"]']
        manifest = oci_manifest(
            config(labels, history), [gzip_layer("aligner")], annotations={"org.example.pipeline": "nextflow"}
        )
        with oci_as(token_registry, owner, PASSWORD) as oci:
            oci.push(f"{lab}/aligner", manifest, "v1")
        assert user.wait_inspected(f"{lab}/aligner", "v1")["status"] == "available"
        user.register(
            lab, "quay.io/biocontainers/bwa:0.7.17", name="bwa", version="0.7.17",
            description="Burrows-Wheeler aligner for short reads",
        )  # fmt: skip
        user.register(lab, "quay.io/x/secret:1.0", name="secret", version="1.0", description="hidden aligner")
        user.register(
            other, "quay.io/x/public-bwa:1.0", name="public-bwa", version="1.0", visibility="public",
            description="a public copy of bwa",
        )  # fmt: skip
    _packages(token_registry, f"{lab}/aligner", "v1", {"samtools": "1.17", "python": "3.12.1"})
    bwa_packages = {"samtools": "1.19", "python": "3.11.7", "libssl1.1": "1.1.1w"}
    _packages(token_registry, f"{lab}/bwa", "0.7.17", bwa_packages)
    _packages(token_registry, f"{lab}/secret", "1.0", {"samtools": "1.20"})
    _packages(token_registry, f"{other}/public-bwa", "1.0", {"samtools": "1.21"})
    return World(token_registry, owner, reader, outsider, lab, other)


@pytest.fixture
def owner(world: World) -> Iterator[CatalogUser]:
    with CatalogUser.connect(world.registry, world.owner) as user:
        yield user


def find(user: CatalogUser | None, registry: RunningRegistry, q: str, **params: Any) -> Json:
    if user is None:
        answer = httpx.get(f"{registry.url}/api/v1/search", params={"q": q, **params}, timeout=30)
        assert answer.status_code == 200, answer.text
        found: Json = answer.json()
        return found
    result: Json = user.api.call("GET", "/search", params={"q": q, **params})
    return result


def names(found: Json) -> list[str]:
    return [item["name"].split("/", 1)[1] for item in found["items"]]


def test_words_are_ranked_name_first(world: World, owner: CatalogUser) -> None:
    found = find(owner, world.registry, f"aligner workspace:{world.lab}")
    assert names(found)[0] == "aligner"  # the name outranks descriptions
    assert set(names(found)) == {"aligner", "bwa", "secret"}
    assert found["total"] == 3
    item = found["items"][0]
    assert item["workspace"] == world.lab
    assert item["visibility"] == "private"
    assert [v["version"] for v in item["versions"]] == ["v1"]
    assert item["versions"][0]["platforms"] == ["linux/amd64"]
    # Prefixes of words match, and every word must.
    assert names(find(owner, world.registry, f"burrows whee workspace:{world.lab}")) == ["bwa"]
    assert names(find(owner, world.registry, f"burrows nothing workspace:{world.lab}")) == []


def test_labels_annotations_and_history_are_searched(world: World, owner: CatalogUser) -> None:
    ws = f"workspace:{world.lab}"
    assert names(find(owner, world.registry, f"zlib1g {ws}")) == ["aligner"]  # the history
    assert names(find(owner, world.registry, f"nextflow {ws}")) == ["aligner"]  # an annotation
    assert names(find(owner, world.registry, f"genomics {ws}")) == ["aligner"]  # a label's value
    assert names(find(owner, world.registry, f"label:{SOURCE_LABEL}=*github.com/lh3* {ws}")) == ["aligner"]
    assert names(find(owner, world.registry, f"label:maintainer {ws}")) == ["aligner"]
    assert names(find(owner, world.registry, f"label:org.example.*=nextflow {ws}")) == ["aligner"]
    assert names(find(owner, world.registry, f"label:maintainer=nobody {ws}")) == []


def test_package_terms_compare_versions(world: World, owner: CatalogUser) -> None:
    ws = f"workspace:{world.lab}"

    def pkg(q: str) -> list[str]:
        return sorted(names(find(owner, world.registry, f"{q} {ws}")))

    assert pkg("pkg:samtools") == ["aligner", "bwa", "secret"]
    assert pkg("samtools>=1.19") == ["bwa", "secret"]
    assert pkg("samtools<1.19") == ["aligner"]
    assert pkg("samtools==1.19.0") == ["bwa"]
    assert pkg("samtools!=1.19") == ["aligner", "secret"]
    assert pkg("python=3.11") == ["bwa"]  # a version prefix
    assert pkg("python=3.1") == []  # whole pieces only
    assert pkg("samtools>=1.19 python=3.11") == ["bwa"]
    assert pkg("samtools>=1.20 python=3.11") == []  # both in one version
    assert pkg("pkg:SAMTOOLS aligner") == ["aligner", "bwa", "secret"]
    assert pkg("pkg:no-such-package") == []
    # A Debian name with a dot is found as it is stored (only Python names are PEP 503-folded).
    assert pkg("libssl1.1>=1.1.1") == ["bwa"]


def test_results_show_the_packages_that_matched_and_the_marks(world: World, owner: CatalogUser) -> None:
    """Each result names the packages its package terms found in its matching versions (newest
    first), and carries the image's trust marks as the image's own page does."""
    ws = owner.new_workspace("marked")
    owner.register(ws, "quay.io/x/kit:1", name="kit", version="1", description="a kit")
    owner.add_version(f"{ws}/kit", "quay.io/x/kit:2", version="2")
    _packages(world.registry, f"{ws}/kit", "1", {"samtools": "1.18", "zlib": "1.3"}, ecosystem="conda")
    _packages(world.registry, f"{ws}/kit", "2", {"samtools": "1.19.2", "zlib": "1.3"}, ecosystem="conda")
    _packages(world.registry, f"{ws}/kit", "2", {"SAMtools": "1.19.2"})  # a deb of the same name

    def package_rows(q: str) -> list[tuple[str, str, str]]:
        (item,) = find(owner, world.registry, f"{q} workspace:{ws}")["items"]
        return [(p["name"], p["version"], p["ecosystem"]) for p in item["packages"]]

    # Only the versions that match give their packages: 1.18 is in a version that does not.
    assert package_rows("samtools>=1.19") == [("samtools", "1.19.2", "conda"), ("SAMtools", "1.19.2", "deb")]
    assert package_rows("pkg:samtools zlib=1") == [
        ("samtools", "1.19.2", "conda"),
        ("samtools", "1.18", "conda"),
        ("SAMtools", "1.19.2", "deb"),
        ("zlib", "1.3", "conda"),
    ]
    assert package_rows("samtools<1.19") == [("samtools", "1.18", "conda")]
    assert package_rows("kit") == []  # no package term: no packages

    (plain,) = find(owner, world.registry, f"kit workspace:{ws}")["items"]
    assert plain["marks"] == {"marks": ["user"], "signature": "none", "signed_by": None, "build_run": None}
    with Api.connect(world.registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.call("PUT", f"/workspaces/{ws}/mark", json={"mark": "official"})
        (marked,) = find(owner, world.registry, f"samtools>=1.19 workspace:{ws}")["items"]
        assert marked["marks"]["marks"] == ["official"]
        assert marked["marks"] == owner.image(f"{ws}/kit")["marks"]  # as the image's page
        # A public image's marks are shown to anyone; the search still shows only what they see.
        admin.call("PUT", f"/workspaces/{world.other}/mark", json={"mark": "verified"})
    (public,) = find(None, world.registry, f"samtools>=1.19 workspace:{world.other}")["items"]
    assert public["marks"]["marks"] == ["verified"]
    assert public["packages"] == [{"name": "samtools", "version": "1.21", "ecosystem": "deb"}]
    assert find(None, world.registry, f"samtools>=1.19 workspace:{ws}")["total"] == 0


def test_the_new_fields_are_documented(world: World) -> None:
    document = httpx.get(f"{world.registry.url}/api/v1/openapi.json", timeout=30).json()
    schemas = document["components"]["schemas"]
    found = next(
        schema
        for name, schema in schemas.items()
        if name.startswith("Found") and "packages" in schema["properties"]
    )
    assert {"packages", "marks", "versions"} <= found["properties"].keys()
    matched = next(schema for name, schema in schemas.items() if name.startswith("MatchedPackage"))
    assert set(matched["required"]) == {"name", "version", "ecosystem"}


def test_facets_are_counted_over_the_matches(world: World, owner: CatalogUser) -> None:
    found = find(owner, world.registry, "pkg:samtools")
    mine = {k: v for k, v in found["facets"]["workspace"].items() if k in (world.lab, world.other)}
    assert mine == {world.lab: 3, world.other: 1}
    scoped_found = find(owner, world.registry, f"pkg:samtools workspace:{world.lab}")
    assert scoped_found["facets"]["source"] == {"internal": 1, "external": 2}
    assert scoped_found["facets"]["type"] == {"tool": 3}
    assert scoped_found["facets"]["platform"] == {"linux/amd64": 1}
    assert names(find(owner, world.registry, f"pkg:samtools source:internal workspace:{world.lab}")) == [
        "aligner"
    ]
    assert names(find(owner, world.registry, f"pkg:samtools platform:linux/amd64 workspace:{world.lab}")) == [
        "aligner"
    ]
    assert names(find(owner, world.registry, f"pkg:samtools type:bench workspace:{world.lab}")) == []
    assert find(owner, world.registry, f"source:cached workspace:{world.lab}")["total"] == 0


def test_private_images_are_in_no_result_facet_or_count(world: World) -> None:
    q = "samtools>=1.19"
    with (
        CatalogUser.connect(world.registry, world.reader) as reader,
        CatalogUser.connect(world.registry, world.outsider) as outsider,
    ):
        seen = find(reader, world.registry, q)
        assert {world.lab: 2, world.other: 1}.items() <= seen["facets"]["workspace"].items()
        for user in (outsider, None):
            found = find(user, world.registry, q)
            ours = [i["name"] for i in found["items"] if i["name"].split("/")[0] in (world.lab, world.other)]
            assert ours == [f"{world.other}/public-bwa"]
            assert world.lab not in found["facets"].get("workspace", {})
            assert find(user, world.registry, f"hidden workspace:{world.lab}")["total"] == 0
            assert find(user, world.registry, f"{q} workspace:{world.other}")["total"] == 1
            assert find(user, world.registry, f"{q} workspace:{world.lab}") == {
                "items": [], "total": 0, "limit": 20, "offset": 0, "facets": {}, "total_exact": True,
            }  # fmt: skip


def test_paging(world: World, owner: CatalogUser) -> None:
    q = f"pkg:samtools workspace:{world.lab}"
    whole = names(find(owner, world.registry, q))
    pages = [names(find(owner, world.registry, q, limit=1, offset=i)) for i in range(4)]
    assert pages == [[whole[0]], [whole[1]], [whole[2]], []]


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("color:red", "unknown filter"),
        ("source:somewhere", "source is one of"),
        ("type:toy", "type is one of"),
        ("platform:amd64", "platform is os/arch"),
        ("label:=x", "label term"),
        ("pkg:-x", "package term"),
        ("workspace:a workspace:b", "given twice"),
        ('"unbalanced', "cannot be read"),
        ("+++", "no word"),
        (" ".join(["w"] * 21), "more than 20 terms"),
    ],
)
def test_bad_queries_are_422_problems(world: World, q: str, says: str) -> None:
    answer = httpx.get(f"{world.registry.url}/api/v1/search", params={"q": q}, timeout=30)
    assert says in problem(answer, 422)


def test_bounds(world: World) -> None:
    url = f"{world.registry.url}/api/v1/search"
    bad: list[dict[str, str | int]] = [
        {"q": "x" * 501},
        {"q": ""},
        {"q": "x", "limit": 101},
        {"q": "x", "offset": -1},
        {},
    ]
    for params in bad:
        problem(httpx.get(url, params=params, timeout=30), 422)


def test_cli(world: World, tmp_path: Path) -> None:
    cli = Cli(world.registry, tmp_path / "cli.toml")
    cli.ok("login", world.registry.url, "-u", world.owner, "--password-stdin", stdin=PASSWORD + "\n")
    shown = cli.ok("search", f"samtools>=1.19 workspace:{world.lab}")
    lines = shown.splitlines()
    assert lines[0].split() == ["NAME", "VERSIONS", "SOURCE", "PLATFORMS", "MARKS", "PACKAGES", "DESCRIPTION"]
    (bwa,) = [line for line in lines if f"{world.lab}/bwa " in line]
    for shown_there in ("0.7.17", "external", "samtools 1.19 (deb)"):  # the package: why it matched
        assert shown_there in bwa, bwa
    words = cli.ok("search", f"aligner workspace:{world.lab}").splitlines()
    assert words[0].split() == ["NAME", "VERSIONS", "SOURCE", "PLATFORMS", "MARKS", "DESCRIPTION"]
    assert "1-2 of 2 images" in shown
    assert [
        i["name"] for i in cli.json("search", f"aligner workspace:{world.lab}", "--limit", "1")["items"]
    ] == [f"{world.lab}/aligner"]
    assert "Nothing found." in cli.ok("search", f"nothing-at-all workspace:{world.lab}")
    failed = cli.fails("search", "color:red")
    assert "unknown filter" in failed.stderr
