"""Identities and access decisions. The registry asks an :class:`Authorizer`; nothing else."""
