"""LookupCache: least-recently-used, bounded by entry count and by total bytes."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from dockyard.cluster.cache import LookupCache, SharedMemoryGenerations
from dockyard.db.engine import Database
from dockyard.registry.events import EventBus
from dockyard.registry.manifests import ManifestService, StoredManifest


class CountingGenerations:
    """In-process generations: enough for a cache on its own."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def current(self, repository: str) -> int:
        return self.counts.get(repository, 0)

    async def changed(self, repository: str) -> None:
        self.counts[repository] = self.current(repository) + 1

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _cached(cache: LookupCache[bytes], key: str) -> bytes | None:
    return cache.get("repo", key)[1]


def test_a_hit_makes_an_entry_recently_used() -> None:
    cache: LookupCache[str] = LookupCache(CountingGenerations(), max_entries=2)
    cache.put("repo", "a", 0, "A")
    cache.put("repo", "b", 0, "B")
    assert cache.get("repo", "a") == (0, "A")
    cache.put("repo", "c", 0, "C")  # evicts b, the least recently used, not a
    assert cache.get("repo", "a") == (0, "A")
    assert cache.get("repo", "b") == (0, None)
    assert cache.get("repo", "c") == (0, "C")


def test_total_bytes_are_bounded() -> None:
    cache: LookupCache[bytes] = LookupCache(CountingGenerations(), size_of=len, max_bytes=100)
    for key in "abcde":
        cache.put("repo", key, 0, key.encode() * 40)
    assert [key for key in "abcde" if _cached(cache, key) is not None] == ["d", "e"]


def test_eviction_by_bytes_is_least_recently_used() -> None:
    cache: LookupCache[bytes] = LookupCache(CountingGenerations(), size_of=len, max_bytes=100)
    cache.put("repo", "a", 0, b"a" * 40)
    cache.put("repo", "b", 0, b"b" * 40)
    assert _cached(cache, "a") is not None
    cache.put("repo", "c", 0, b"c" * 40)
    assert _cached(cache, "a") is not None
    assert _cached(cache, "b") is None
    assert _cached(cache, "c") is not None


def test_a_value_over_the_per_value_limit_is_not_cached() -> None:
    cache: LookupCache[bytes] = LookupCache(CountingGenerations(), size_of=len, max_value_bytes=50)
    cache.put("repo", "small", 0, b"x" * 50)
    cache.put("repo", "big", 0, b"x" * 51)
    assert _cached(cache, "small") is not None
    assert _cached(cache, "big") is None


def test_an_oversized_replacement_drops_the_old_entry() -> None:
    cache: LookupCache[bytes] = LookupCache(CountingGenerations(), size_of=len, max_value_bytes=50)
    cache.put("repo", "a", 0, b"old")
    cache.put("repo", "a", 0, b"x" * 51)
    assert _cached(cache, "a") is None


def test_replacing_and_invalidating_entries_releases_their_bytes() -> None:
    generations = CountingGenerations()
    cache: LookupCache[bytes] = LookupCache(generations, size_of=len, max_bytes=100)
    cache.put("repo", "a", 0, b"a" * 40)
    cache.put("repo", "a", 0, b"a" * 40)  # counted once
    cache.put("other", "b", 0, b"b" * 40)
    assert _cached(cache, "a") is not None
    assert cache.get("other", "b")[1] is not None
    generations.counts["repo"] = 1
    assert _cached(cache, "a") is None  # stale: dropped, with its bytes
    cache.put("repo", "c", 1, b"c" * 40)
    cache.put("repo", "d", 1, b"d" * 20)
    assert cache.get("other", "b")[1] is not None
    assert _cached(cache, "c") is not None
    assert _cached(cache, "d") is not None


def test_values_weigh_64_bytes_by_default() -> None:
    cache: LookupCache[int] = LookupCache(CountingGenerations(), max_bytes=3 * 64)
    for size in range(4):
        cache.put("repo", f"sha256:{size}", 0, size)
    assert [cache.get("repo", f"sha256:{size}")[1] for size in range(4)] == [None, 1, 2, 3]


def test_manifests_are_weighed_by_their_content() -> None:
    service = ManifestService(cast(Database, None), EventBus(), 4 << 20, CountingGenerations())
    big = StoredManifest("sha256:big", "application/vnd.oci.image.index.v1+json", 1 << 20, b"{" * (1 << 20))
    small = StoredManifest("sha256:small", "application/vnd.oci.image.manifest.v1+json", 2, b"{}")
    service._cache.put("repo", "big", 0, big)
    service._cache.put("repo", "small", 0, small)
    assert service._cache.get("repo", "big") == (0, None)
    assert service._cache.get("repo", "small") == (0, small)


async def test_the_shared_generations_file_is_allocated_before_it_is_mapped(tmp_path: Path) -> None:
    # A counter's first write into a hole of a sparse file would need a block: on a full
    # disk the kernel answers that with SIGBUS, which kills the server process.
    generations = SharedMemoryGenerations(tmp_path / "generations", slots=4096)
    await generations.start()
    try:
        info = (tmp_path / "generations").stat()
        assert info.st_size == 4096 * 8
        assert info.st_blocks * 512 >= info.st_size
        await generations.changed("lab/tool")
        assert generations.current("lab/tool") == 1
    finally:
        await generations.stop()
