"""Constructs of the flag service: one logical unit each, keyword-only arguments, no cross-wiring."""
