"""Browser sessions for the web UI: sign in with a username and password, sign out.

A session is a personal access token (named ``web session``, all scopes, 12 hours) kept in an
``HttpOnly``, ``SameSite=Strict`` cookie, so page scripts never hold the secret and other sites
cannot send it. The token appears in the user's token list and can be revoked there like any
other; signing out revokes it. Requests authenticated by the cookie that change something must
also carry the ``X-Dockyard-Web`` header (see :mod:`dockyard.api.deps`): a cross-site form
cannot set it, so a forged request is refused even by a browser that ignores ``SameSite``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from dockyard.api.deps import SESSION_COOKIE, Caller, ClientIp, Services, signed_in_by_cookie
from dockyard.api.v1.inputs import Name, Text
from dockyard.auth.accounts import User
from dockyard.auth.guard import require_user
from dockyard.auth.policy import TOKEN_SCOPES

router = APIRouter(tags=["session"])

SESSION_NAME = "web session"
SESSION_DAYS = 0.5  # 12 hours: a working day, then sign in again


class SignIn(BaseModel):
    username: Name
    password: Text


class Session(BaseModel):
    user: User
    expires_at: float | None


@router.post("/session", status_code=201, summary="Sign in (web UI): sets the session cookie")
async def sign_in(
    body: SignIn, request: Request, response: Response, services: Services, ip: ClientIp
) -> Session:
    subject = await services.accounts.authenticate(body.username, body.password, ip)
    created = await services.tokens.create_personal(
        subject, SESSION_NAME, sorted(TOKEN_SCOPES), SESSION_DAYS, ip
    )
    response.set_cookie(
        SESSION_COOKIE,
        created.secret,
        max_age=int(SESSION_DAYS * 86400),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Session(user=await services.accounts.get_user(subject.name), expires_at=created.info.expires_at)


@router.get("/session", summary="The signed-in user of this session")
async def current(request: Request, services: Services, actor: Caller) -> Session:
    require_user(actor)
    expires_at = getattr(request.state, "session_expires_at", actor.expires_at)
    return Session(user=await services.accounts.get_user(actor.name), expires_at=expires_at)


@router.delete("/session", status_code=204, summary="Sign out: revokes the session and clears its cookie")
async def sign_out(
    request: Request, response: Response, services: Services, actor: Caller, ip: ClientIp
) -> None:
    if actor.token_id is not None and signed_in_by_cookie(request):
        await services.tokens.revoke_personal(actor, actor.token_id, ip)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
