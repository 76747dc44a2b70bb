"""Reading one platform's layers for their packages (:mod:`dockyard.catalog.package_scan`),
on a worker thread fed from this event loop, without a database."""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator

from dockyard.catalog.package_scan import Layers, ScanLimits, scan_in_thread, scan_layers
from tests.support.package_dbs import APK_INSTALLED, DPKG_STATUS, conda_record, layer


def store(*layers: bytes) -> tuple[dict[str, bytes], list[str]]:
    blobs = {f"sha256:{i:064d}": data for i, data in enumerate(layers)}
    return blobs, list(blobs)


def reader(blobs: dict[str, bytes], piece: int = 1000) -> Layers:
    def read(digest: str) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            data = blobs[digest]
            for start in range(0, len(data), piece):
                yield data[start : start + piece]

        return chunks()

    return read


async def test_layers_are_read_on_a_worker_thread_in_small_pieces() -> None:
    blobs, digests = store(
        layer({"var/lib/dpkg/status": DPKG_STATUS}, symlinks={"bin/sh": "/bin/busybox"}),
        layer({"lib/apk/db/installed": APK_INSTALLED, "var/lib/dpkg/.wh.status": b""}),
    )

    found = await scan_in_thread(reader(blobs), digests, ScanLimits())

    assert [p.name for p in found.packages] == ["busybox", "musl"]
    assert (found.failed, found.notes) == (False, [])
    assert found.bytes_read > len(DPKG_STATUS) + len(APK_INSTALLED)


async def test_device_nodes_and_fifos_of_a_layer_are_passed_over() -> None:
    blobs, digests = store(
        layer(
            {"var/lib/dpkg/status": DPKG_STATUS},
            devices={
                "dev/console": tarfile.CHRTYPE,
                "dev/sda": tarfile.BLKTYPE,
                "run/fifo": tarfile.FIFOTYPE,
            },
        )
    )

    found = await scan_layers(reader(blobs), digests, ScanLimits())

    assert [p.name for p in found.packages] == ["base-files", "libssl3"]
    assert not found.failed


async def test_the_total_kept_is_bounded() -> None:
    files = {f"opt/conda/conda-meta/p{i}-1.0-0.json": conda_record(f"p{i}", "1.0") for i in range(10)}
    blobs, digests = store(layer(files))
    size = len(conda_record("p0", "1.0"))

    found = await scan_layers(reader(blobs), digests, ScanLimits(total=size * 4 + 10))

    assert len(found.packages) == 4
    assert len(found.notes) == 6
    assert "over the limit of bytes kept per image" in found.notes[0]


async def test_a_truncated_layer_fails_the_scan_naming_the_layer() -> None:
    blobs, digests = store(layer({"var/lib/dpkg/status": DPKG_STATUS})[:60])

    found = await scan_in_thread(reader(blobs), digests, ScanLimits())

    assert found.failed
    assert found.notes[0].startswith(f"layer {digests[0]} could not be read")
