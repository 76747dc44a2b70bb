"""The signature (Standard Webhooks), the CloudEvents document and the retry schedule."""

from __future__ import annotations

import json

import pytest

from dockyard.webhooks.cloudevents import Event, document, headers, new_secret, sign, verify
from dockyard.webhooks.delivery import DeliveryPolicy, backoff

EVENT = Event("3f1c", "org.dockyard.image.pushed", "lab/tool:1.0", {"tag": "1.0"}, 1_765_000_000.25)


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (and its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signed = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_receiver_accepts_the_signed_body_and_nothing_else() -> None:
    secret = new_secret()
    body = document(EVENT, "https://dockyard.example.org")
    sent = headers(EVENT, [secret], body, 1_765_000_100)
    assert verify(secret, sent, body, now=1_765_000_100)
    assert verify(secret, sent, body, now=1_765_000_100 + 299)
    assert not verify(secret, sent, body, now=1_765_000_100 + 301)  # replayed late
    assert not verify(secret, sent, body + b" ", now=1_765_000_100)  # altered
    assert not verify(new_secret(), sent, body, now=1_765_000_100)  # another secret
    assert not verify(secret, {**sent, "webhook-id": "other"}, body, now=1_765_000_100)
    assert not verify(secret, {k: v for k, v in sent.items() if k != "webhook-signature"}, body, now=0)
    # Several signatures (a secret being rotated): one match is enough.
    rotated = {**sent, "webhook-signature": "v1,AAAA " + sent["webhook-signature"]}
    assert verify(secret, rotated, body, now=1_765_000_100)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = new_secret(), new_secret()
    body = document(EVENT, "https://dockyard.example.org")
    sent = headers(EVENT, [new, old], body, 1_765_000_100)
    assert len(sent["webhook-signature"].split()) == 2
    assert verify(new, sent, body, now=1_765_000_100)
    assert verify(old, sent, body, now=1_765_000_100)
    assert not verify(new_secret(), sent, body, now=1_765_000_100)


def test_the_body_is_a_cloudevents_1_0_structured_document() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert secret != new_secret()
    body = document(EVENT, "https://dockyard.example.org")
    assert json.loads(body) == {
        "specversion": "1.0",
        "id": "3f1c",
        "source": "https://dockyard.example.org",
        "type": "org.dockyard.image.pushed",
        "subject": "lab/tool:1.0",
        "time": "2025-12-06T05:46:40.250000Z",
        "datacontenttype": "application/json",
        "data": {"tag": "1.0"},
    }
    sent = headers(EVENT, [secret], body, 5)
    assert sent["content-type"] == "application/cloudevents+json"
    assert sent["webhook-id"] == "3f1c"
    assert sent["webhook-timestamp"] == "5"


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (1, 2.5, 5.0),
        (2, 5.0, 10.0),
        (3, 10.0, 20.0),
        (10, 1280.0, 2560.0),
        (11, 1800.0, 3600.0),
        (99, 1800, 3600),
    ],
)
def test_retries_back_off_exponentially_with_jitter_up_to_a_cap(
    attempts: int, low: float, high: float
) -> None:
    policy = DeliveryPolicy(backoff_base=5.0, backoff_cap=3600.0)
    assert backoff(policy, attempts, lambda: 0.0) == low
    assert backoff(policy, attempts, lambda: 1.0) == high
    assert low <= backoff(policy, attempts) <= high
