"""Users and their personal access tokens."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.api.deps import Caller, ClientIp, Services
from dockyard.api.v1.inputs import IdPath, Name, Names, Text, TokenDays
from dockyard.auth.accounts import User
from dockyard.auth.bearer import looks_like_access_token
from dockyard.auth.guard import require_user
from dockyard.auth.tokens import NewToken, TokenInfo
from dockyard.errors import Forbidden, Invalid

router = APIRouter(tags=["users"])


class UserCreate(BaseModel):
    username: Name = Field(
        description="Lowercase letters, digits, single . _ - separators; names the personal workspace."
    )
    password: Text = Field(min_length=8, description="At least 8 characters.")
    email: Name | None = None
    full_name: Name | None = None
    is_admin: bool = False


class UserUpdate(BaseModel):
    password: Text | None = Field(None, min_length=8)
    current_password: Text | None = Field(None, description="Required to change your own password.")
    email: Name | None = None
    full_name: Name | None = None
    is_admin: bool | None = Field(None, description="Admins only.")
    disabled: bool | None = Field(None, description="Admins only.")


class TokenCreate(BaseModel):
    name: Name = Field(description="Where the token is used, e.g. 'laptop' or 'ci'.")
    scopes: Names = Field(["pull", "push", "delete", "api"], description="Among pull, push, delete, api.")
    expires_in_days: TokenDays | None = Field(None, description="Omit for a token that does not expire.")


@router.post("/users", status_code=201, summary="Create a user (admins)")
async def create_user(body: UserCreate, services: Services, actor: Caller, ip: ClientIp) -> User:
    require_user(actor)
    if not actor.is_admin:
        raise Forbidden("only admins create users")
    return await services.accounts.create_user(
        actor,
        body.username,
        body.password,
        email=body.email,
        full_name=body.full_name,
        is_admin=body.is_admin,
        client_ip=ip,
    )


@router.get(
    "/users",
    summary="List users (admins)",
    description="In name order, a page at a time: pass last= the last username you have for the next "
    "page (a page shorter than limit is the last). q= keeps users whose name, full name or email "
    "contains it, any case.",
)
async def list_users(
    services: Services,
    actor: Caller,
    q: Name = "",
    last: Name = "",
    limit: int = Query(100, ge=1, le=1000),
) -> list[User]:
    require_user(actor)
    if not actor.is_admin:
        raise Forbidden("only admins list users")
    return await services.accounts.list_users(search=q.strip(), last=last, limit=limit)


@router.get("/user", summary="The signed-in user")
async def me(services: Services, actor: Caller) -> User:
    require_user(actor)
    return await services.accounts.get_user(actor.name)


@router.get("/users/{username}", summary="A user (themselves or admins)")
async def get_user(username: Name, services: Services, actor: Caller) -> User:
    require_user(actor)
    if not actor.is_admin and actor.name != username:
        raise Forbidden("you may only look at your own account")
    return await services.accounts.get_user(username)


@router.patch("/users/{username}", summary="Change a user (themselves or admins)")
async def update_user(
    username: Name, body: UserUpdate, services: Services, actor: Caller, ip: ClientIp
) -> User:
    require_user(actor)
    own = actor.name == username
    if not actor.is_admin and not own:
        raise Forbidden("you may only change your own account")
    if not actor.is_admin and (body.is_admin is not None or body.disabled is not None):
        raise Forbidden("only admins change admin rights or disable accounts")
    if own and body.password is not None and not actor.is_admin:
        if body.current_password is None:
            raise Invalid("give current_password to change your password")
        if looks_like_access_token(body.current_password):
            raise Invalid("current_password must be your password, not a token")
        await services.accounts.authenticate(username, body.current_password, ip)
    if own and body.disabled:
        raise Invalid("you cannot disable your own account")
    return await services.accounts.update_user(
        actor,
        username,
        password=body.password,
        email=body.email,
        full_name=body.full_name,
        is_admin=body.is_admin,
        disabled=body.disabled,
        client_ip=ip,
    )


@router.get("/user/tokens", summary="Your personal access tokens")
async def list_tokens(services: Services, actor: Caller) -> list[TokenInfo]:
    return await services.tokens.list_personal(actor)


@router.post(
    "/user/tokens", status_code=201, summary="Create a personal access token (the secret is shown once)"
)
async def create_token(body: TokenCreate, services: Services, actor: Caller, ip: ClientIp) -> NewToken:
    return await services.tokens.create_personal(actor, body.name, body.scopes, body.expires_in_days, ip)


@router.delete("/user/tokens/{token_id}", status_code=204, summary="Revoke a personal access token")
async def revoke_token(token_id: IdPath, services: Services, actor: Caller, ip: ClientIp) -> None:
    await services.tokens.revoke_personal(actor, token_id, ip)
