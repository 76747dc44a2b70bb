from __future__ import annotations

import hashlib

import pytest

from dockyard.oci.digest import Digest, new_hasher
from dockyard.oci.errors import InvalidDigest

SHA256_HEX = hashlib.sha256(b"hello").hexdigest()
SHA512_HEX = hashlib.sha512(b"hello").hexdigest()


@pytest.mark.parametrize(
    ("value", "algorithm", "hex_part"),
    [
        (f"sha256:{SHA256_HEX}", "sha256", SHA256_HEX),
        (f"sha512:{SHA512_HEX}", "sha512", SHA512_HEX),
        ("sha256:" + "0" * 64, "sha256", "0" * 64),
    ],
)
def test_parse_valid(value: str, algorithm: str, hex_part: str) -> None:
    digest = Digest.parse(value)
    assert isinstance(digest, Digest)
    assert digest == value
    assert digest.algorithm == algorithm
    assert digest.hex == hex_part


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("sha256", id="no-colon"),
        pytest.param("sha256:", id="no-hex"),
        pytest.param(f":{SHA256_HEX}", id="no-algorithm"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}", id="sha256-63"),
        pytest.param(f"sha256:{SHA256_HEX}0", id="sha256-65"),
        pytest.param(f"sha512:{SHA256_HEX}", id="sha512-with-64"),
        pytest.param(f"sha256:{SHA512_HEX}", id="sha256-with-128"),
        pytest.param(f"sha256:{SHA256_HEX.upper()}", id="uppercase-hex"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}A", id="one-uppercase"),
        pytest.param(f"SHA256:{SHA256_HEX}", id="uppercase-algorithm"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}g", id="non-hex"),
        pytest.param(f"md5:{hashlib.md5(b'x').hexdigest()}", id="md5"),  # noqa: S324
        pytest.param(f"sha384:{hashlib.sha384(b'x').hexdigest()}", id="sha384-unregistered"),
        pytest.param(f"blake3:{SHA256_HEX}", id="unknown-algorithm"),
        pytest.param(f" sha256:{SHA256_HEX}", id="leading-space"),
        pytest.param(f"sha256:{SHA256_HEX} ", id="trailing-space"),
        pytest.param(f"sha256:{SHA256_HEX}\n", id="trailing-newline"),
        pytest.param(f"sha256:sha256:{SHA256_HEX}", id="double-prefix"),
    ],
)
def test_parse_invalid_is_digest_invalid(value: str) -> None:
    with pytest.raises(InvalidDigest) as info:
        Digest.parse(value)
    assert isinstance(info.value, ValueError)
    assert info.value.message


def test_unknown_algorithm_message_names_the_supported_ones() -> None:
    with pytest.raises(InvalidDigest) as info:
        Digest.parse(f"blake3:{SHA256_HEX}")
    assert "sha256" in info.value.message
    assert "sha512" in info.value.message


def test_of_hashes_the_bytes() -> None:
    assert Digest.of(b"hello") == f"sha256:{SHA256_HEX}"
    assert Digest.of(b"hello", "sha512") == f"sha512:{SHA512_HEX}"
    assert Digest.of(b"") == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert Digest.parse(Digest.of(b"round trip")) == Digest.of(b"round trip")


def test_new_hasher_matches_of() -> None:
    hasher = new_hasher()
    hasher.update(b"hel")
    hasher.update(memoryview(b"lo"))
    assert f"sha256:{hasher.hexdigest()}" == Digest.of(b"hello")
    copy = hasher.copy()
    copy.update(b"!")
    assert f"sha256:{hasher.hexdigest()}" == Digest.of(b"hello"), "copy must not share state"
    assert f"sha256:{copy.hexdigest()}" == Digest.of(b"hello!")
    other = new_hasher("sha512")
    other.update(b"hello")
    assert other.hexdigest() == SHA512_HEX


def test_new_hasher_refuses_unregistered_algorithms() -> None:
    with pytest.raises(InvalidDigest):
        new_hasher("md5")
