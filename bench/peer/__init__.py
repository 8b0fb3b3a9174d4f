"""`make bench-peer`: our local server against Unleash 8 (pinned in unleash/), same machine, same client."""
