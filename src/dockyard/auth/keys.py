"""Token-signing keys (ES256), kept in the data folder or named by settings.

The folder holds ``<kid>.pem`` files (mode 0600) and ``keys.json``, which names the active
key and, for retired keys, until when their tokens still verify. Rotation makes a new
active key and keeps the old one verifiable for a token lifetime plus a grace period, so
nobody is logged out: clients simply fetch a new token when an old one stops verifying.

Several replicas must share the keys: mount one folder, or set ``token_key_file``
(and ``token_previous_key_files`` while rotating) on every replica.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypedDict, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The libtrust key id that Docker's token tooling uses: SHA-256 of the DER public key,
    240 bits, base32, in 12 groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


class KeysFile(TypedDict, total=False):
    """The ``keys.json`` document. :meth:`KeyRing.ensure` and :meth:`KeyRing.rotate` always
    write both fields; reading is lenient (a missing file reads as ``{}``)."""

    active: str
    """Key id of the key that signs new tokens."""
    retired: dict[str, float]
    """Key id of each retired key -> the time (Unix seconds) until which its tokens verify."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


def _load_pem(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(
            f"{path} is not an EC P-256 private key "
            "(make one with: openssl ecparam -name prime256v1 -genkey -noout)"
        )
    return key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class KeyRing:
    def __init__(
        self, folder: Path, key_file: Path | None = None, previous_files: tuple[Path, ...] = ()
    ) -> None:
        self.folder = folder
        self.key_file = key_file
        self.previous_files = previous_files
        self._signing: SigningKey | None = None
        self._public: dict[str, tuple[ec.EllipticCurvePublicKey, float | None]] = {}
        self._stamp: tuple[int, int] = (-1, -1)
        self._checked = 0.0  # monotonic time of the last look at the folder

    @property
    def _state_file(self) -> Path:
        return self.folder / "keys.json"

    def _read_state(self) -> KeysFile:
        try:
            # Unchecked: the file is ours, written whole by _write_state.
            return cast(KeysFile, dict(json.loads(self._state_file.read_text())))
        except FileNotFoundError:
            return {}

    def _write_state(self, state: KeysFile) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self._state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[TextIO]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield handle

    def _new_key_file(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        kid = key_id(key.public_key())
        fd = os.open(self.folder / f"{kid.replace(':', '')}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_pem(key))
            out.flush()
            os.fsync(out.fileno())
        return kid

    def ensure(self) -> None:
        """Create the first key unless keys come from settings or exist already."""
        if self.key_file is not None:
            return
        with self._locked():
            state = self._read_state()
            if not state.get("active"):
                state = {"active": self._new_key_file(), "retired": {}}
                self._write_state(state)

    def rotate(self, keep_seconds: float) -> str:
        """Make a new active key; the old one verifies for ``keep_seconds`` more."""
        if self.key_file is not None:
            raise ValueError("keys come from token_key_file; rotate by replacing that file (see README)")
        with self._locked():
            state = self._read_state()
            retired = dict(state.get("retired") or {})
            old = state.get("active")
            if old:
                retired[old] = time.time() + keep_seconds
            active = self._new_key_file()
            self._write_state({"active": active, "retired": retired})
            return active

    def refresh(self, force: bool = False) -> None:
        """Reload if the folder's state changed (one stat call)."""
        if self.key_file is not None:
            if self._signing is None:
                key = _load_pem(self.key_file)
                self._signing = SigningKey(key_id(key.public_key()), key)
                self._public = {self._signing.kid: (key.public_key(), None)}
                for path in self.previous_files:
                    old = _load_pem(path)
                    self._public[key_id(old.public_key())] = (old.public_key(), None)
            return
        try:
            info = self._state_file.stat()
        except FileNotFoundError:
            self.ensure()
            info = self._state_file.stat()
        # keys.json is replaced, never rewritten: a new inode marks a change even where
        # the file system keeps modification times to the second.
        stamp = (info.st_mtime_ns, info.st_ino)
        if stamp == self._stamp and not force:
            return
        state = self._read_state()
        public: dict[str, tuple[ec.EllipticCurvePublicKey, float | None]] = {}
        active = state["active"]
        key = _load_pem(self.folder / f"{active.replace(':', '')}.pem")
        public[active] = (key.public_key(), None)
        for kid, until in (state.get("retired") or {}).items():
            path = self.folder / f"{kid.replace(':', '')}.pem"
            if path.exists():
                public[kid] = (_load_pem(path).public_key(), float(until))
        self._signing = SigningKey(active, key)
        self._public = public
        self._stamp = stamp

    def signing_key(self) -> SigningKey:
        self.refresh()
        assert self._signing is not None
        return self._signing

    def verification_key(self, kid: str, now: float) -> ec.EllipticCurvePublicKey | None:
        """The public key ``kid`` if its tokens verify at ``now``. Looks at the folder at most
        once a second (a rotation by another process shows within that), and at once for an
        unknown key id."""
        tick = time.monotonic()
        if kid not in self._public or tick - self._checked >= 1.0:
            self._checked = tick
            self.refresh()
        found = self._public.get(kid)
        if found is None:
            return None
        key, until = found
        return key if until is None or now < until else None

    def public_jwks(self) -> dict[str, object]:
        """The verification keys as a JSON Web Key Set, for other verifiers."""
        self.refresh()
        keys = []
        for kid, (key, _) in sorted(self._public.items()):
            numbers = key.public_numbers()
            keys.append(
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "use": "sig",
                    "alg": "ES256",
                    "kid": kid,
                    "x": _b64(numbers.x.to_bytes(32, "big")),
                    "y": _b64(numbers.y.to_bytes(32, "big")),
                }
            )
        return {"keys": keys}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
