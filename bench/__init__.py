"""Benchmarks, the propagation harness and the fault drills (`make bench`, `make drill`); runtime/ never imports it."""
