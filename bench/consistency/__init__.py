"""`make bench-propagation`: how soon every container serves a write, and commits out of number order."""
