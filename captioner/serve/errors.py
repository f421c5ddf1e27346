"""Every error a client can cause is a 4xx with a one-line JSON body `{"error": "..."}`; the server keeps serving."""

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from captioner.errors import CaptionerError

log = logging.getLogger("captioner.serve")


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)  # always one line


def add_error_handlers(app: FastAPI) -> None:
    """Bad input (CaptionerError) → 400; HTTP errors keep their status; missing or invalid fields → 422."""

    @app.exception_handler(CaptionerError)
    async def bad_input(request: Request, error: CaptionerError) -> JSONResponse:
        return error_response(400, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_fields(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "; ".join(_describe(problem) for problem in error.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)  # the traceback goes to the server's log only
        return error_response(500, f"internal error: {type(error).__name__}: {error}")


def _describe(problem: dict) -> str:
    field = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body", "query"))
    if problem.get("type") == "missing":
        return f"missing form field '{field}'"
    return f"{field}: {problem.get('msg', 'invalid')}"


class UploadLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with a 413, by Content-Length before reading a byte,
    and by counting while reading when the length is not announced."""

    def __init__(self, app: ASGIApp, max_bytes: int, label: str) -> None:
        self.app, self.max_bytes, self.label = app, max_bytes, label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        announced = _content_length(scope)
        if announced is not None and announced > self.max_bytes:
            return await self._refuse(scope, receive, send, announced)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # an HTTPException passes through FastAPI's body parsing unchanged
                raise HTTPException(413, self.message(seen))
            return message

        await self.app(scope, counted, send)

    def message(self, size: int) -> str:
        return f"upload too large: {size / 2**20:.1f} MB sent, the limit is {self.label}"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        body = json.dumps({"error": self.message(size)}, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
