"""Chain ids of layer prefixes, the platform a base is looked for in, and a Dockerfile's FROM."""

from __future__ import annotations

import hashlib

from dockyard.catalog.chains import chain_ids, from_reference, main_platform
from dockyard.catalog.inspect import layer_ids


def test_a_chain_is_the_hash_of_its_prefix_so_shared_prefixes_share_chains() -> None:
    base, child = chain_ids(["sha256:a", "sha256:b"]), chain_ids(["sha256:a", "sha256:b", "sha256:c"])
    assert child[:2] == base
    assert child[0] == "sha256:" + hashlib.sha256(b"sha256:a\n").hexdigest()
    assert child[2] == "sha256:" + hashlib.sha256(b"sha256:a\nsha256:b\nsha256:c\n").hexdigest()
    assert chain_ids(["sha256:b", "sha256:a"])[1] != base[1]  # order matters
    assert chain_ids([]) == []


def test_diff_ids_are_used_when_the_config_lists_one_per_layer() -> None:
    assert layer_ids({"rootfs": {"diff_ids": ["sha256:d1"]}}, ["sha256:l1"]) == ["sha256:d1"]
    assert layer_ids({"rootfs": {"diff_ids": []}}, ["sha256:l1"]) == ["sha256:l1"]
    assert layer_ids({}, ["sha256:l1"]) == ["sha256:l1"]


def test_the_main_platform_is_amd64_when_there() -> None:
    assert main_platform(["linux/arm64", "linux/amd64"]) == "linux/amd64"
    assert main_platform(["linux/s390x", "linux/arm64"]) == "linux/arm64"
    assert main_platform([]) is None


def test_from_follows_stages_to_the_image_the_final_stage_or_target_is_built_on() -> None:
    dockerfile = (
        "# syntax=docker/dockerfile:1\n"
        "FROM --platform=linux/amd64 golang:1.22 AS build\n"
        "RUN go build\n"
        "FROM alpine:3.20 AS run\n"
        "FROM run\n"
        "COPY --from=build /app /app\n"
    )
    assert from_reference(dockerfile) == "alpine:3.20"
    assert from_reference(dockerfile, "build") == "golang:1.22"
    pinned = "registry.example/lab/base@sha256:" + "a" * 64
    assert from_reference(f"FROM \\\n  {pinned}\n") == pinned
    assert from_reference("FROM scratch\nCOPY x /x\n") is None
    assert from_reference("ARG BASE=alpine\nFROM $BASE\n") is None
    assert from_reference("RUN echo no from\n") is None
