"""A pre-fork WSGI server: N worker processes, each serving one request at a time, like Lambda containers.

Processes, never threads: the Powertools resolver keeps the current request in class attributes and
Logger/Metrics are singletons (DESIGN.md). Nagle is disabled on every accepted socket and each
answer leaves in one write, or a stdlib answer stalls about 40 ms on delayed ACKs.

HTTP/1.1 keep-alive without parking: a worker never blocks on an idle connection. It waits in one
`select` on the shared listening socket and on the connections it keeps, and answers one request
from whichever is ready, so it still serves one request at a time. A new connection is accepted
only when the worker is free to answer it at once (no worker hoards connections another could
serve); an idle kept connection is closed after KEEPALIVE_IDLE_SECONDS, and past
KEEPALIVE_MAX_CONNECTIONS per worker answers say `Connection: close`.

The modules:
- supervisor: the master process (PreforkServer) forks the workers, replaces any that die, stops them all.
- worker: one worker process, from fork to os._exit.
- worker_loop: a worker's select loop over the listening socket and its kept connections.
- connection: one connection's requests, each read within a deadline and answered over HTTP/1.1.
- sockets: the listening socket and accepting from it.
- signals: the stop signals of the master, and a worker's death with its master.
"""
