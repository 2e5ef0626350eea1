"""The socket guard: records and refuses every network connection or name lookup made in a process (no pytest, so
a ``sitecustomize`` can load it into every Python process a command starts)."""

from __future__ import annotations

import socket


class SocketGuard:
    """Records and refuses every network (non ``AF_UNIX``) connection or name lookup made in this process.

    Patches ``socket.socket.connect``/``connect_ex``/``sendto``, ``socket.create_connection`` and
    ``socket.getaddrinfo``/``gethostbyname``; each attempt is appended to :attr:`attempts` as
    ``(function, address)`` and fails with ``OSError`` (as an unplugged network would).
    """

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        self._saved: list[tuple[object, str, object]] = []

    def _refuse(self, what: str, address) -> OSError:
        self.attempts.append((what, repr(address)))
        return OSError(f"network access blocked by the test socket guard: {what} {address!r}")

    def _patch(self, owner, name: str, replacement) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def __enter__(self) -> "SocketGuard":
        guard = self
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

        def connect(sock, address):
            if sock.family == socket.AF_UNIX:
                return real_connect(sock, address)
            raise guard._refuse("connect", address)

        def connect_ex(sock, address):
            if sock.family == socket.AF_UNIX:
                return real_connect_ex(sock, address)
            raise guard._refuse("connect_ex", address)

        def sendto(sock, *args):
            raise guard._refuse("sendto", args[-1])

        def lookup(name):
            def refuse(host, *args, **kwargs):
                raise guard._refuse(name, host)

            return refuse

        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket.socket, "sendto", sendto)
        self._patch(
            socket,
            "create_connection",
            lambda address, *a, **k: (_ for _ in ()).throw(guard._refuse("create_connection", address)),
        )
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            self._patch(socket, name, lookup(name))
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
