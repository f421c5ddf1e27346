"""Running the app: bind the port first (a port in use is a one-line error), say where, serve until Ctrl-C."""

import errno
import socket
import sys
from collections.abc import Callable

from fastapi import FastAPI

from captioner.errors import CaptionerError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one), or a CaptionerError saying why not."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise CaptionerError(f"cannot listen on host {host!r}: {e.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT; a live listener still blocks
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise CaptionerError(f"port {port} on {host} is already in use: stop what uses it or pick another with --port") from None
        raise CaptionerError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce(url: str, host: str, say: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
    say(f"captioner serve: listening on {url} (page: {url}/, API docs: {url}/docs); Ctrl-C stops")
    if host in LOOPBACK:
        say("captioner serve: bound to loopback only: other machines cannot connect (use --host 0.0.0.0 to allow them)")
    else:
        say(f"captioner serve: bound to {host}: other machines on the network can connect")


def serve(app: FastAPI, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve on an already bound socket until Ctrl-C; uvicorn finishes open requests, then returns. (On SIGTERM it
    shuts down as gracefully, then re-raises the signal, so the process ends as SIGTERM ends it: status 143.)"""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("info", "debug"), lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised the Ctrl-C it caught: that was the plan
        pass
    finally:
        sock.close()
    if not server.started:
        raise CaptionerError("the server failed to start (see the messages above)")
    print("captioner serve: stopped", file=sys.stderr, flush=True)
