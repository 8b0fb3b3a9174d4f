"""Names both stacks of an environment agree on: SSM parameters, cache and user ids, metric namespace.

The service stack reads what the stateful stack made through SSM parameters, never through exports:
an export in use cannot change, so a cache (or database) that must be replaced would be stuck. The
parameters are resolved when the service stack deploys (`AWS::SSM::Parameter::Value<String>`), so the
function needs no SSM endpoint and no SSM call at run time.
"""

from __future__ import annotations

SERVICE_NAME = "flagservice"
PARAMETER_ROOT = "/flagservice"


def metrics_namespace(environment: str) -> str:
    """One CloudWatch namespace per environment, so dashboards and alarms never mix environments."""
    return f"FeatureFlags/{environment}"


def parameter_name(environment: str, key: str) -> str:
    """`/flagservice/<env>/<key>`, for example `/flagservice/prod/cache/endpoint`."""
    return f"{PARAMETER_ROOT}/{environment}/{key}"


def cache_group_id(environment: str, generation: int) -> str:
    """The replication group id of one cache generation (a replacement cache is the next generation).

    Fixed names let the service grant `elasticache:Connect` on the active and the previous generation
    without knowing their endpoints, and make IAM auth tokens (signed for this id) predictable.
    """
    return f"flags-{environment}-cache-{generation}"


def cache_iam_user_id(environment: str) -> str:
    """The ElastiCache user the function signs in as with IAM (its user id and user name must be equal)."""
    return f"flags-{environment}-service"


def cache_default_user_id(environment: str) -> str:
    """The user group's mandatory `default` user, switched off (user ids are unique per account and region)."""
    return f"flags-{environment}-default"


def cache_user_group_id(environment: str) -> str:
    return f"flags-{environment}-users"


def rightsizing_function_name(environment: str) -> str:
    """The cache right-sizing function's fixed name: `flagctl rightsize --env <env>` finds it without CloudFormation."""
    return f"flagservice-{environment}-rightsizing"
