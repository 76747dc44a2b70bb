"""Identity tables: accounts, their tokens, the audit log and the login throttle, and the
membership facts the authorizer decides on (workspaces, members, teams, robots, repositories
and their grants). The services that change workspaces live in :mod:`dockyard.tenancy`.

Timestamps are float seconds since the epoch (UTC). All tables are on the one
:data:`dockyard.db.metadata.metadata`."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from dockyard.db.metadata import metadata

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    # The workspace is the name's first path component; NULL only for rows made before 0002.
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE")),
    Column("visibility", String(10), nullable=False, server_default="private"),
    Index("ix_repositories_workspace", "workspace_id"),
)


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", String(255)),
    Column("full_name", String(255)),
    Column("password_hash", String(255)),  # argon2id; NULL: no password login
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("disabled_at", Float),
    Column("created_at", Float, nullable=False),
    Column("last_login_at", Float),
)


# Every user has a personal workspace named after them, so names are unique across both.
workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # 'org' or 'personal'
    Column("personal_user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("default_visibility", String(10), nullable=False, server_default="private"),
    Column("created_at", Float, nullable=False),
    Column("created_by", Integer),
)


memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(12), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_memberships_user", "user_id"),
)


teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_teams_workspace_name"),
)


team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_team_members_user", "user_id"),
)


robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", Integer),
    Column("disabled_at", Float),
    UniqueConstraint("workspace_id", "name", name="uq_robots_workspace_name"),
)


# Roles held by a team or a robot, on the whole workspace (repository_id NULL) or one repository.
permissions = Table(
    "permissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE")),
    Column("role", String(12), nullable=False),
    Column("created_at", Float, nullable=False),
    CheckConstraint("(team_id IS NULL) <> (robot_id IS NULL)", name="ck_permissions_one_holder"),
    Index("ix_permissions_team", "team_id"),
    Index("ix_permissions_robot", "robot_id"),
    Index("ix_permissions_repository", "repository_id"),
)


# Personal access tokens and robot tokens. Only a SHA-256 of the secret is kept (secrets
# are 32 random bytes, so a slow hash adds nothing); ``scopes`` caps what the token may do.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(64), nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    CheckConstraint("(user_id IS NULL) <> (robot_id IS NULL)", name="ck_access_tokens_one_owner"),
    Index("ix_access_tokens_user", "user_id"),
    Index("ix_access_tokens_robot", "robot_id"),
)


# Docker's "identity tokens" (OAuth2 refresh tokens), issued on login with offline_token.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE")),
    Column("access_token_id", Integer, ForeignKey("access_tokens.id", ondelete="CASCADE")),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("client_id", String(100), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
)


# Direct rights of one user on one repository: from an approved request (with an expiry)
# or given by a maintainer (repository-level permission, expiry optional).
repository_grants = Table(
    "repository_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(8), nullable=False),  # 'pull' or 'push'
    Column("expires_at", Float),
    Column("granted_by", Integer),
    Column("request_id", Integer, ForeignKey("access_requests.id", ondelete="SET NULL")),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("ix_repository_grants_user", "user_id", "repository_id"),
)


# Append-only: the code only ever inserts. Rows outlive the workspaces they name.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor_kind", String(10), nullable=False),  # user, robot, anonymous, system
    Column("actor_id", Integer),
    Column("actor_name", String(140), nullable=False),
    Column("action", String(40), nullable=False),
    Column("workspace_id", Integer),
    Column("target", String(300), nullable=False, server_default=""),
    Column("client_ip", String(64)),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON object
    Index("ix_audit_log_workspace", "workspace_id", "id"),
    Index("ix_audit_log_at", "at"),
)


# Failed-login counters, per user and address and per address alone.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("locked_until", Float),
)
