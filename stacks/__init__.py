"""CDK code of the flag service: configuration, stacks and their constructs."""
