"""A port on the machine's 127.0.0.1 that relays each connection to a socket dialed elsewhere.

The rehearsal's Redis servers live in network namespaces of their own (the sandbox host's, the
ElastiCache nodes' private network), where they listen on that namespace's 127.0.0.1. Tools and
tests outside connect to a relay on the machine's 127.0.0.1 instead; the relay asks ``dial`` for a
socket inside (made by a thread in that namespace) and pumps bytes both ways. Loopback only: the
machine never gets a VPC address.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable


class LoopbackRelay:
    """Listens on 127.0.0.1 (a free port: ``address``) and relays each connection to ``dial()``."""

    def __init__(self, dial: Callable[[], socket.socket], name: str) -> None:
        self._dial = dial
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()
        acceptor = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        acceptor.start()
        self._threads.append(acceptor)

    def _accept_loop(self) -> None:
        # Ends when stop() sets the event; each turn is bounded by the listener's 0.2 s timeout.
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = self._dial()
            except Exception:  # a refused dial is told to the client by closing it
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            pump.start()
            self._threads = [thread for thread in self._threads if thread.is_alive()] + [pump]

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        with selectors.DefaultSelector() as selector:
            for s in (a, b):
                s.setblocking(False)
                selector.register(s, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    for key, _ in selector.select(timeout=0.2):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(65536)
                        if not data:
                            return
                        peer[source].setblocking(True)
                        peer[source].sendall(data)
                        peer[source].setblocking(False)
            except OSError:
                return
            finally:
                with self._lock:
                    for s in (a, b):
                        self._sockets.discard(s)
                        s.close()

    def stop(self) -> None:
        """Stop accepting, end every relayed connection, and wait (bounded) for the threads."""
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for s in list(self._sockets):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=2)
