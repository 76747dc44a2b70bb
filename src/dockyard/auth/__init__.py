"""Identity: who the caller is and whether they may act. Accounts and passwords, personal and
robot tokens, token-signing keys and JWTs, the login throttle, the audit log, the authorizer the
registry asks and the Docker token server. Workspace management is :mod:`dockyard.tenancy`."""
