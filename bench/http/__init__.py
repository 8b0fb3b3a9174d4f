"""`make bench`, over HTTP: the local server under sequential, closed-loop (wrk) and open-loop load."""
