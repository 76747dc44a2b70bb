"""The identity and access services, built once by :mod:`dockyard.app`."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth.accounts import Accounts
from dockyard.auth.jwt_tokens import TokenService
from dockyard.auth.keys import KeyRing
from dockyard.auth.token_server import TokenServer
from dockyard.auth.tokens import Tokens
from dockyard.db.engine import Database
from dockyard.tenancy.repositories import Repositories
from dockyard.tenancy.requests import AccessRequests
from dockyard.tenancy.workspaces import Workspaces


@dataclass
class Identity:
    db: Database
    accounts: Accounts
    workspaces: Workspaces
    tokens: Tokens
    repositories: Repositories
    requests: AccessRequests
    keys: KeyRing
    jwt: TokenService
    token_server: TokenServer
