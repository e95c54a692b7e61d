"""NetworkGuard: loopback only, mapped sandbox addresses redirected, restored on exit."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from redis_migration_ops.local_engine import LocalEngine


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A one-connection TCP echo server on 127.0.0.1; yields its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)

    def serve() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            connection.sendall(connection.recv(64))

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    yield server.getsockname()[1]
    server.close()
    worker.join(5)


def test_private_addresses_are_refused_before_anything_is_sent(bare_engine: LocalEngine) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match="NetworkGuard"):
        socket.create_connection(("10.0.0.1", 6379), timeout=5)
    with pytest.raises(ConnectionRefusedError, match="NetworkGuard"), socket.socket() as raw:
        raw.connect(("10.0.0.1", 6379))
    with pytest.raises(ConnectionRefusedError, match="NetworkGuard"):
        socket.getaddrinfo("example.com", 443)
    # no connect attempt was made: a real one to 10.0.0.1 would take until the timeout
    assert time.monotonic() - started < 1


def test_a_mapped_address_reaches_its_loopback_forwarder(bare_engine: LocalEngine, echo_server: int) -> None:
    # Given the sandbox's private address mapped to a local server
    bare_engine.map_address("10.0.0.5", 6379, ("127.0.0.1", echo_server))
    # When a client connects to the private address (as redis-py does, through getaddrinfo)
    assert socket.getaddrinfo("10.0.0.5", 6379, type=socket.SOCK_STREAM)[0][4] == ("127.0.0.1", echo_server)
    with socket.create_connection(("10.0.0.5", 6379), timeout=5) as connection:
        connection.sendall(b"PING")
        # Then the local server answered
        assert connection.recv(64) == b"PING"


def test_a_mapped_name_resolves_in_any_case_and_with_its_trailing_dot(
    bare_engine: LocalEngine, echo_server: int
) -> None:
    # Given ElastiCache's endpoint mapped to a local server
    name = "master.campaign-redis.abc123.use1.cache.amazonaws.com"
    bare_engine.map_address(name, 6379, ("127.0.0.1", echo_server))
    # Then a client spelling it as DNS allows (upper case, fully qualified) reaches it; another port not
    for spelling in (name.upper(), name + "."):
        assert socket.getaddrinfo(spelling, 6379, type=socket.SOCK_STREAM)[0][4] == ("127.0.0.1", echo_server)
    with pytest.raises(ConnectionRefusedError, match="NetworkGuard"):
        socket.getaddrinfo(name.upper(), 6380)


def test_the_guard_is_removed_on_exit(fixtures_dir: object) -> None:
    original = socket.getaddrinfo
    with LocalEngine(fixtures_dir):  # type: ignore[arg-type]
        assert socket.getaddrinfo is not original
    assert socket.getaddrinfo is original
    assert "connect" not in vars(socket.socket)
