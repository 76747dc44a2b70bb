"""Password checks: a matching password is remembered, never a wrong one, and a new
password hash (a password change) is checked afresh."""

from __future__ import annotations

from dockyard.auth.passwords import REMEMBER_MAX, Passwords


class CountingHasher(Passwords):
    """Cheap argon2 parameters, and a count of the argon2 verifications actually run."""

    def __init__(self) -> None:
        super().__init__(memory_kib=8, time_cost=1)
        self.argon2_runs = 0

    def _verify(self, encoded: str | None, password: str) -> bool:
        self.argon2_runs += 1
        return super()._verify(encoded, password)


async def test_a_matching_password_costs_argon2_once() -> None:
    passwords = CountingHasher()
    stored = passwords.hash("correct horse")
    assert await passwords.verify(stored, "correct horse")
    assert await passwords.verify(stored, "correct horse")
    assert await passwords.verify(stored, "correct horse")
    assert passwords.argon2_runs == 1


async def test_wrong_passwords_and_unknown_users_always_cost_argon2() -> None:
    passwords = CountingHasher()
    stored = passwords.hash("correct horse")
    for _ in range(3):
        assert not await passwords.verify(stored, "wrong horse")
        assert not await passwords.verify(None, "correct horse")
    assert passwords.argon2_runs == 6


async def test_a_new_hash_forgets_the_old_password() -> None:
    passwords = CountingHasher()
    old = passwords.hash("correct horse")
    assert await passwords.verify(old, "correct horse")
    new = passwords.hash("battery staple")  # the password was changed: a new salted hash
    assert not await passwords.verify(new, "correct horse")
    assert await passwords.verify(new, "battery staple")
    # The same password set again gets a new salt too: checked afresh, then remembered.
    again = passwords.hash("correct horse")
    assert again != old
    runs = passwords.argon2_runs
    assert await passwords.verify(again, "correct horse")
    assert passwords.argon2_runs == runs + 1


async def test_the_memory_is_bounded() -> None:
    passwords = CountingHasher()
    stored = [passwords.hash(f"password {i}") for i in range(3)]
    for i in range(REMEMBER_MAX):  # as many other logins as it remembers
        passwords._matched[i.to_bytes(8, "big")] = float("inf")
    for i, encoded in enumerate(stored):
        assert await passwords.verify(encoded, f"password {i}")
    assert len(passwords._matched) == REMEMBER_MAX
    assert await passwords.verify(stored[-1], "password 2")
    assert passwords.argon2_runs == 3  # the newest are kept, the oldest forgotten
