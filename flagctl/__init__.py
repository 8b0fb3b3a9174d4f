"""flagctl: list, read, change, kill and revert feature flags from a terminal (docs/operations.md).

Against the local server with its bearer token, or against a deployed environment with the caller's
AWS credentials (SigV4, service `execute-api`). Run it as `python -m flagctl --help` from the checkout.
"""
