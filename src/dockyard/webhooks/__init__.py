"""Webhooks: a workspace's HTTP endpoints told of what happens in it (CloudEvents 1.0, signed),
delivered at least once from a transactional outbox, in order per repository."""
