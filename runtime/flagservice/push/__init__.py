"""The deployed event stream (issue 17): change messages on an AppSync Events channel (docs/infrastructure.md).

token.py mints and checks the channel's read-only credential; publish.py sends one message per change from the
write path and the outbox replay; publisher.py (outside the VPC) and authorizer.py are the channel's two functions.
"""
