"""What a receiver gets: the event as a CloudEvents 1.0 JSON document (structured mode), and
the Standard Webhooks signature headers over it.

Event types are ``org.dockyard.<name>``; the names (what an endpoint's ``events`` filter lists):

- ``image.pushed``: a manifest was pushed (by tag or digest); subject ``repository:tag`` or
  ``repository@digest``
- ``image.deleted``: a manifest was deleted by digest; ``tag.deleted``: a tag was deleted
  (both through the registry API)
- ``version.deleted``: a catalog version was deleted (with its tag); ``repository.deleted``: an
  image with all its versions, or a repository, was deleted
- ``build.started``, ``build.finished``: a build run of a definition
- ``import.finished``: an uploaded image archive became an image version
- ``access.requested``, ``access.approved``: an access request to the workspace
- ``retention.run``: a retention run deleted (or in a dry run, listed) what its rules say
- ``webhook.ping``: the test an endpoint's maintainer asked for (always sent, whatever the filter)

Signing (https://www.standardwebhooks.com): ``webhook-id`` (the event's id, the same on every
retry: receivers deduplicate on it), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256>`` over ``"{id}.{timestamp}.{body}"`` with the
secret's bytes (the base64 after ``whsec_``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREFIX = "org.dockyard."
EVENT_NAMES = (
    "image.pushed",
    "image.deleted",
    "tag.deleted",
    "version.deleted",
    "repository.deleted",
    "build.started",
    "build.finished",
    "import.finished",
    "access.requested",
    "access.approved",
    "retention.run",
)
PING = "webhook.ping"
CONTENT_TYPE = "application/cloudevents+json"
SECRET_PREFIX = "whsec_"  # noqa: S105  # the scheme's prefix, not a secret
TOLERANCE_SECONDS = 300  # how old a timestamp a receiver should accept


def event_type(name: str) -> str:
    return PREFIX + name


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """What a receiver does (the README shows it): the signature matches one of those listed and
    the timestamp is within :data:`TOLERANCE_SECONDS` of ``now``."""
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        listed = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in listed)


@dataclass(frozen=True)
class Event:
    uid: str
    type: str
    subject: str
    data: dict[str, Any]
    created_at: float


def document(event: Event, source: str) -> bytes:
    """The CloudEvents 1.0 structured-mode JSON body."""
    time = datetime.fromtimestamp(event.created_at, UTC).isoformat().replace("+00:00", "Z")
    body = {
        "specversion": "1.0",
        "id": event.uid,
        "source": source,
        "type": event.type,
        "subject": event.subject,
        "time": time,
        "datacontenttype": "application/json",
        "data": event.data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def headers(event: Event, signing: list[str], body: bytes, timestamp: int) -> dict[str, str]:
    """The request's headers; one signature per secret (the new and, during a rotation's
    grace, the old one), space-separated as Standard Webhooks lists them."""
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": "Dockyard-Webhooks/1",
        "webhook-id": event.uid,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, event.uid, timestamp, body) for secret in signing),
    }
