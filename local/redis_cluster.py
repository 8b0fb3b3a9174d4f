"""A Redis Cluster on loopback (cluster mode enabled: primaries with replicas), for tests and drills.

Every node is a `redis-server --cluster-enabled yes` of local/embedded.py on a free port; `redis-cli
--cluster create` assigns the slots and pairs each replica with a primary. Nodes time out after
NODE_TIMEOUT_MS (the replica of a dead primary takes over about two of them later); full coverage is not
required, as on the ElastiCache cache (a dead shard fails only its own slots).

    with running_redis_cluster() as cluster:
        cluster.owner("ff:{dev}:revision").kill()
        cluster.wait_healthy()
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from local.binaries import redis_binaries
from local.embedded import HOST, ServerProcess, free_port, start_redis
from local.processes import ServerStartError

NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10000
PORT_ATTEMPTS = 5
READY_SECONDS = 30.0


def node_args(node_timeout_ms: int) -> tuple[str, ...]:
    return (
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--cluster-node-timeout", str(node_timeout_ms), "--cluster-require-full-coverage", "no"),
        *("--maxmemory", "256mb", "--maxmemory-policy", "volatile-lru", "--repl-diskless-sync-delay", "0"),
    )


def _port_pair_free(port: int) -> bool:
    """A node listens on `port` and on its cluster bus, `port` + 10000 (so `port` is at most 55535)."""
    if port + BUS_OFFSET > 65535:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port + BUS_OFFSET))
        except OSError:
            return False
    return True


def start_node(prefer: str, node_timeout_ms: int) -> ServerProcess:
    """One cluster-enabled redis-server on a free port whose bus port is free too (retried if taken meanwhile)."""
    for attempt in range(PORT_ATTEMPTS):
        port = next(p for p in iter(free_port, None) if _port_pair_free(p))
        try:
            return start_redis(prefer=prefer, port=port, extra_args=node_args(node_timeout_ms))
        except ServerStartError:
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class RedisClusterNodes:
    nodes: list[ServerProcess]

    @property
    def url(self) -> str:
        """A URL naming one node (the first): the client discovers the others."""
        return self.nodes[0].url

    def admin(self, node: ServerProcess, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host=HOST, port=node.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def live(self) -> list[ServerProcess]:
        return [node for node in self.nodes if node.alive]

    def _by_port(self, port: int) -> ServerProcess:
        return next(node for node in self.nodes if node.port == port)

    def _slots(self) -> list[tuple[int, int, list[int]]]:
        """(first slot, last slot, [primary port, replica ports...]) as a live node sees it."""
        for node in self.live():
            with contextlib.suppress(redis.RedisError):
                ranges = self.admin(node).execute_command("CLUSTER SLOTS")
                return [(int(r[0]), int(r[1]), [int(n[1]) for n in r[2:]]) for r in ranges]
        raise RuntimeError("no node of the cluster answers")

    def owner(self, key: str) -> ServerProcess:
        """The primary holding `key`'s slot."""
        return self._by_port(self._ports_for(key)[0])

    def replicas_of(self, key: str) -> list[ServerProcess]:
        """The replicas of `key`'s primary (CLUSTER NODES: CLUSTER SLOTS omits a replica that has no offset yet)."""
        view = self.admin(self.live()[0]).cluster("nodes")
        port = self.owner(key).port
        primary = next(each["node_id"] for address, each in view.items() if address.endswith(f":{port}"))
        return [self._by_port(int(address.rsplit(":", 1)[1])) for address, each in view.items()
                if each["master_id"] == primary]  # fmt: skip

    def _ports_for(self, key: str) -> list[int]:
        slot = int(self.admin(self.live()[0]).execute_command("CLUSTER KEYSLOT", key))
        return next(ports for first, last, ports in self._slots() if first <= slot <= last)

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok, every slot's primary is alive and answers as a primary."""
        try:
            if any(self.admin(node).cluster("info").get("cluster_state") != "ok" for node in self.live()):
                return False
            primaries = {self._by_port(ports[0]) for _, _, ports in self._slots()}
            return all(p.alive and self.admin(p).info("replication")["role"] == "master" for p in primaries)
        except (redis.RedisError, StopIteration):
            return False

    def wait_healthy(self, timeout: float = READY_SECONDS) -> float:
        """Wait until healthy(); the time.monotonic() it was first seen healthy."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis cluster is not healthy after {timeout} s")
            time.sleep(0.02)
        return time.monotonic()

    def wait_synced(self, timeout: float = READY_SECONDS) -> None:
        """Every live replica has its primary's data (a failover promotes a replica that has it)."""
        deadline = time.monotonic() + timeout
        replicas = [n for n in self.live() if self.admin(n).info("replication")["role"] == "slave"]
        while any(self.admin(n).info("replication").get("master_link_status") != "up" for n in replicas):
            if time.monotonic() > deadline:
                raise RuntimeError("the replicas of the Redis cluster did not sync")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.resume()
            node.stop()


def start_redis_cluster(
    primaries: int = 3, replicas: int = 1, *, prefer: str = "system", node_timeout_ms: int = NODE_TIMEOUT_MS
) -> RedisClusterNodes:
    """Start the nodes, create the cluster with `redis-cli --cluster create`, wait until it is healthy."""
    cluster = RedisClusterNodes([])
    try:
        for _ in range(primaries * (1 + replicas)):
            cluster.nodes.append(start_node(prefer, node_timeout_ms))
        cli = redis_binaries(prefer).bin_dir / "redis-cli"
        addresses = [f"{HOST}:{node.port}" for node in cluster.nodes]
        create = [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=READY_SECONDS)
        cluster.wait_healthy()
        _wait_replicas_known(cluster, primaries * replicas)
        cluster.wait_synced()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_replicas_known(cluster: RedisClusterNodes, expected: int) -> None:
    """`--cluster create` returns before every node has learned every replica's role (gossip)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        views = [cluster.admin(node).cluster("nodes") for node in cluster.nodes]
        if all(sum("slave" in each["flags"].split(",") for each in view.values()) == expected for view in views):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis cluster's nodes do not agree on its replicas")
        time.sleep(0.05)


@contextlib.contextmanager
def running_redis_cluster(
    primaries: int = 3, replicas: int = 1, *, prefer: str = "system", node_timeout_ms: int = NODE_TIMEOUT_MS
) -> Iterator[RedisClusterNodes]:
    cluster = start_redis_cluster(primaries, replicas, prefer=prefer, node_timeout_ms=node_timeout_ms)
    try:
        yield cluster
    finally:
        cluster.stop()
