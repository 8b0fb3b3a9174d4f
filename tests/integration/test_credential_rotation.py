"""The rotation drill: a real Redis whose ACL password changes under load, and 0 failed reads.

Each reader thread is one "container": its own credentials (cached for an hour, as a token or secret
would be), its own client and pool, and connections that drop now and then (idle timeouts, failovers,
the 12-hour limit of IAM connections), so it signs in again all through the drill. An operator rotates
the password in the order that never locks anyone out (ROTATE, publish, wait, SET): the new password is
added, then published, then the old one is removed. Containers still holding the old one are refused
on their next sign-in, re-read the credentials (redis_credentials) and carry on.

The control run is the same drill without the re-read on refusal: it must fail reads, or the drill
proves nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.adapters.redis_credentials import RefreshingCredentials
from flagservice.errors import CacheUnavailableError
from tests import servers

USER = "flags"
ADMIN = ("admin", "admin-password-0123456789")
READERS = 4
ROTATIONS = 4
DROP_EVERY = 20  # reads between dropped connections, per reader
WAIT_AFTER_PUBLISH = 0.15  # the "wait" step: stands in for the containers' secret cache age
RUN_SECONDS = 3.0


@dataclass
class PublishedPassword:
    """Where containers read the password: a secret's current value, or what an IAM token stands for."""

    value: str = "password-0"
    reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self) -> tuple[str, str]:
        with self.lock:
            self.reads += 1
            return USER, self.value


@dataclass
class Tally:
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    refusals: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def server() -> Iterator[servers.ServerProcess]:
    with servers.running_redis() as running:
        admin = redis.Redis(host="127.0.0.1", port=running.port)
        admin.acl_setuser(ADMIN[0], enabled=True, passwords=[f"+{ADMIN[1]}"], keys="*", commands=["+@all"])
        admin.acl_setuser(USER, enabled=True, passwords=["+password-0"], keys="*", commands=["+@all"])
        admin.acl_setuser("default", enabled=False)  # nobody gets in without a password
        yield running


def admin_client(server: servers.ServerProcess) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, username=ADMIN[0], password=ADMIN[1])


def rotate(server: servers.ServerProcess, published: PublishedPassword, number: int) -> None:
    """ROTATE (both valid), publish, wait, SET (only the new one)."""
    admin = admin_client(server)
    old, new = published.value, f"password-{number}"
    admin.acl_setuser(USER, enabled=True, passwords=[f"+{new}"], reset_passwords=False)
    with published.lock:
        published.value = new
    time.sleep(WAIT_AFTER_PUBLISH)
    admin.acl_setuser(USER, enabled=True, passwords=[f"-{old}"])
    admin.close()


def reader(
    server: servers.ServerProcess, published: PublishedPassword, tally: Tally, stop: threading.Event, *, hooked: bool
) -> None:
    credentials = RefreshingCredentials(published.fetch, max_age=3600)
    client = RedisFlagCache.client_for(
        f"redis://127.0.0.1:{server.port}/0",
        max_connections=2,
        credentials=credentials if hooked else None,
        connect_timeout=2.0,
        command_timeout=2.0,
    )
    if not hooked:  # the same credentials, but nothing forgets them when the server refuses them
        client.connection_pool.connection_kwargs["credential_provider"] = credentials
    cache = RedisFlagCache(client, env="drill", soft_ttl=lambda: 60.0, stale_max_age=60, negative_ttl=30)
    count = 0
    while not stop.is_set():
        count += 1
        try:
            cache.read("rotation-probe")
        except CacheUnavailableError as exc:
            with tally.lock:
                tally.failures.append(str(exc)[:120])
        if count % DROP_EVERY == 0:
            client.connection_pool.disconnect()  # this container's connections drop: it must sign in again
    client.connection_pool.disconnect()
    with tally.lock:
        tally.reads += count
        tally.refusals += credentials.refusals


def drill(server: servers.ServerProcess, *, hooked: bool) -> tuple[Tally, PublishedPassword]:
    published, tally, stop = PublishedPassword(), Tally(), threading.Event()
    threads = [
        threading.Thread(target=reader, args=(server, published, tally, stop), kwargs={"hooked": hooked})
        for _ in range(READERS)
    ]
    for thread in threads:
        thread.start()
    pause = RUN_SECONDS / (ROTATIONS + 1)
    for number in range(1, ROTATIONS + 1):
        time.sleep(pause)
        rotate(server, published, number)
    time.sleep(pause)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return tally, published


def test_rotating_the_cache_password_under_load_fails_no_read(server: servers.ServerProcess) -> None:
    tally, published = drill(server, hooked=True)

    assert tally.failures == []
    assert tally.reads > 200  # under load: every reader kept reading across the rotations
    assert tally.refusals > 0  # containers did hold a retired password, and recovered from the refusal
    assert published.reads > READERS  # ... by reading the published one again
    assert admin_client(server).acl_getuser(USER)["passwords"] and published.value == f"password-{ROTATIONS}"


def test_without_the_re_read_on_refusal_the_same_drill_fails_reads(server: servers.ServerProcess) -> None:
    tally, _ = drill(server, hooked=False)

    assert tally.failures, "the control run must fail, or the drill cannot tell the mechanism works"
    assert any("WRONGPASS" in failure or "invalid" in failure.lower() for failure in tally.failures)
