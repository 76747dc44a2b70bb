"""Image layers merged as a container runtime merges them, for the few files a reader keeps.

Layers are fed bottom to top, one entry name at a time (:meth:`Overlay.entry`); the files kept
(:meth:`Overlay.keep`) are what the merged root filesystem holds once :meth:`Overlay.end_layer`
has been called for the last layer. The OCI whiteouts are honoured: ``dir/.wh.name`` removes
``dir/name`` (and all below it) of the layers below, ``dir/.wh..wh..opq`` hides everything the
layers below put in ``dir``; a non-directory entry at a path hides a lower file there and a lower
directory's content. A layer's own entries are never hidden by its own whiteouts.
"""

from __future__ import annotations

import posixpath
from typing import Generic, TypeVar

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

T = TypeVar("T")


def _ancestors(path: str) -> list[str]:
    found = []
    parent = posixpath.dirname(path)
    while parent:
        found.append(parent)
        parent = posixpath.dirname(parent)
    return found


class Overlay(Generic[T]):
    """The kept files of the merged layers: ``files`` maps a path to what was kept of it."""

    def __init__(self) -> None:
        self.files: dict[str, T] = {}
        self._new: dict[str, T] = {}
        self._exact: set[str] = set()  # hides a lower file at exactly this path
        self._trees: set[str] = set()  # hides a lower path and all below it
        self._opaque: set[str] = set()  # hides all below (not the directory itself)
        self._held: set[str] = set()  # the kept files' folders: only entries there can hide one

    def entry(self, name: str, *, is_dir: bool) -> bool:
        """Note an entry of the current layer; False for a whiteout (it has no content to keep)."""
        base = posixpath.basename(name)
        parent = posixpath.dirname(name)
        if base == OPAQUE:
            self._opaque.add(parent)
            return False
        if base.startswith(WHITEOUT):
            self._trees.add(posixpath.join(parent, base[len(WHITEOUT) :]))
            return False
        if name in self.files or name in self._held:  # only what hides a kept file is noted
            (self._exact if is_dir else self._trees).add(name)
        return True

    def keep(self, name: str, value: T) -> None:
        """Keep ``value`` for the current layer's file ``name`` (noted with :meth:`entry`)."""
        self._new[name] = value

    def end_layer(self) -> None:
        for path in list(self.files):
            if path in self._exact or path in self._trees:
                del self.files[path]
                continue
            for parent in _ancestors(path):
                if parent in self._trees or parent in self._opaque:
                    del self.files[path]
                    break
        self.files.update(self._new)
        self._new = {}
        self._exact, self._trees, self._opaque = set(), set(), set()
        self._held = {parent for path in self.files for parent in _ancestors(path)}
