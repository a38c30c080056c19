"""HTTP for accounts: register, log in, log out, anonymous ids, me."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import SESSION_COOKIE, caller_of, json_response, parse_body
from majlis.api.models import CredentialsBody, MeBody, RegisterBody, SessionBody, UserBody
from majlis.api.routing import Endpoint
from majlis.services.accounts import Accounts, Session
from majlis.services.auth import Authenticator

__all__ = ["AccountRoutes"]

PREFIX = "/api/v1/auth"


class AccountRoutes:
    def __init__(self, accounts: Accounts, auth: Authenticator, secure_cookies: bool) -> None:
        self._accounts = accounts
        self._auth = auth
        self._secure = secure_cookies

    def endpoints(self) -> list[Endpoint]:
        tag = "accounts"
        return [
            Endpoint(
                "POST",
                f"{PREFIX}/register",
                self.register,
                "Create an account and log in",
                tag,
                ok=201,
                body=RegisterBody,
                answer=SessionBody,
                auth="none",
                errors=(400, 409, 413, 429),
            ),
            Endpoint(
                "POST",
                f"{PREFIX}/login",
                self.login,
                "Log in",
                tag,
                body=CredentialsBody,
                answer=SessionBody,
                auth="none",
                errors=(400, 401, 413, 429),
            ),
            Endpoint(
                "POST",
                f"{PREFIX}/logout",
                self.logout,
                "Log out (revokes the token)",
                tag,
                ok=204,
                auth="user",
            ),
            Endpoint(
                "POST",
                f"{PREFIX}/anonymous",
                self.anonymous,
                "An anonymous listener id, to listen without an account",
                tag,
                answer=SessionBody,
                auth="none",
                errors=(429,),
            ),
            Endpoint("GET", f"{PREFIX}/me", self.me, "Who am I", tag, answer=MeBody, auth="user"),
        ]

    async def register(self, request: Request) -> Response:
        body = await parse_body(request, RegisterBody)
        session = await self._accounts.register(
            body.username, body.password, body.display_name, body.email
        )
        return self._session_response(session, 201)

    async def login(self, request: Request) -> Response:
        body = await parse_body(request, CredentialsBody)
        session = await self._accounts.login(body.username, body.password)
        return self._session_response(session, 200)

    async def logout(self, request: Request) -> Response:
        await self._accounts.logout(await caller_of(request, self._auth))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def anonymous(self, request: Request) -> Response:
        return json_response(_session_body(self._accounts.anonymous()))

    async def me(self, request: Request) -> Response:
        me = await self._accounts.me(await caller_of(request, self._auth))
        return json_response(MeBody.of_me(me).model_dump())

    def _session_response(self, session: Session, status: int) -> Response:
        response = json_response(_session_body(session), status)
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            max_age=max(1, int(session.expires_at - time.time())),
            httponly=True,
            samesite="strict",
            secure=self._secure,
            path="/",
        )
        return response


def _session_body(session: Session) -> dict[str, object]:
    user = UserBody.of(session.user).model_dump() if session.user else None
    return {
        "token": session.token,
        "expires_at": session.expires_at,
        "member": session.member,
        "user": user,
    }
