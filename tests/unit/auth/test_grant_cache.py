"""GrantCache: an answer is served while the auth generation holds, never after a change
(announced by this process or another through the shared counters), and never so close to
the end of the token or a grant it relies on that the uncached answer would differ."""

from __future__ import annotations

import time
from pathlib import Path

from dockyard.auth.grant_cache import GrantCache, Granted
from dockyard.auth.jwt_tokens import MIN_TTL, Grant
from dockyard.auth.policy import Subject
from dockyard.cluster.cache import SharedMemoryGenerations

ROBOT = Subject("robot", 1, "ws+ci", scopes=frozenset({"pull"}))
PULL = [Grant("repository", "ws/app", frozenset({"pull"}))]


def caches(tmp_path: Path) -> tuple[GrantCache, GrantCache]:
    """Two processes' caches over one counters file."""
    path = tmp_path / "auth-generations"
    return GrantCache(SharedMemoryGenerations(path, 16)), GrantCache(SharedMemoryGenerations(path, 16))


async def test_a_change_anywhere_ends_every_cached_answer(tmp_path: Path) -> None:
    mine, theirs = caches(tmp_path)
    key = GrantCache.key("Basic abc", ["repository:ws/app:pull"])
    for cache in (mine, theirs):
        generation, found = cache.get(key)
        assert found is None
        cache.put(key, generation, Granted(ROBOT, PULL, None))
        assert cache.get(key)[1] == Granted(ROBOT, PULL, None)
    await theirs.changed()
    assert mine.get(key)[1] is None
    assert theirs.get(key)[1] is None


async def test_an_answer_read_before_a_change_is_not_kept(tmp_path: Path) -> None:
    mine, theirs = caches(tmp_path)
    key = GrantCache.key("Basic abc", [])
    generation, _ = mine.get(key)
    await theirs.changed()  # between the lookup and the database's answer
    mine.put(key, generation, Granted(ROBOT, PULL, None))
    assert mine.get(key)[1] is None


def test_answers_end_a_minimum_token_life_before_what_they_rely_on(tmp_path: Path) -> None:
    cache, _ = caches(tmp_path)
    soon = time.time() + MIN_TTL - 1  # a token or grant ending within a token's minimum life
    cache.put("a", cache.get("a")[0], Granted(ROBOT, PULL, soon))
    assert cache.get("a")[1] is None
    later = time.time() + MIN_TTL + 600
    cache.put("b", cache.get("b")[0], Granted(ROBOT, PULL, later))
    assert cache.get("b")[1] is not None


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    cache = GrantCache(SharedMemoryGenerations(tmp_path / "g", 16), max_entries=3)
    for n in range(5):
        cache.put(str(n), cache.get(str(n))[0], Granted(ROBOT, PULL, None))
    assert [cache.get(str(n))[1] is not None for n in range(5)] == [False, False, True, True, True]
