"""One run: our server and Unleash started, the same flag on both, measured, compared, maybe profiled."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.common import procs, report
from bench.common.cluster import ClusterOptions, running_cluster
from bench.http import local_server
from bench.peer.compare.measure import measure, profile_ours, ratios
from bench.peer.compare.plan import FLAG_KEY, PeerPlan
from bench.peer.compare.unleash import create_unleash_flag, running_unleash, unleash_target, wait_flag_visible


def run(plan: PeerPlan, *, workers: int, use_wrk: bool, profile: str) -> dict[str, Any]:
    options = ClusterOptions(servers=1, flags_env="peer", env=(("WORKERS", str(workers)), ("LOG_LEVEL", "INFO")))
    with running_cluster(options) as cluster, running_unleash() as unleash:
        server = cluster.servers[0]
        local_server.create_flag(server)
        create_unleash_flag(unleash.port)
        peer = unleash_target(unleash.port)
        wait_flag_visible(peer, FLAG_KEY)
        targets = {**local_server.our_targets(server.port), "unleash": peer}
        ours_pids, peer_pids = [server.process.pid, cluster.redis.pid], [unleash.process.pid, unleash.postgres.pid]
        pids = {name: peer_pids if name == "unleash" else ours_pids for name in targets}
        measured = measure(targets, pids, plan, use_wrk=use_wrk)
        rows = ratios(measured)
        memory = {"ours": procs.tree_memory(server.process.pid), "unleash": procs.tree_memory(unleash.process.pid)}
        short = any("SHORT" in (row.get("p50_verdict"), row.get("rps_verdict")) for row in rows)
        profiled = None
        if use_wrk and (profile == "always" or (profile == "auto" and short)):
            profiled = profile_ours(server.process.pid, targets["get_flag"], plan, cluster.workdir)
        machine = {**report.machine(cluster), "unleash": unleash.version, "node": _node_version()}
        startup = {"unleash_s": unleash.startup_s}
    return {
        "kind": "peer",
        "plan": {**vars(plan), "workers": workers},
        "machine": machine,
        "startup": startup,
        "targets": measured,
        "ratios": rows,
        "memory": memory,
        "profile": profiled,
    }


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
