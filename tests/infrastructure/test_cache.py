"""The cache: encrypted, authenticated, sized per environment, with an explicit eviction policy."""

from __future__ import annotations

import string
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_resource, resources_of_type

ELASTICACHE_AUTH_PUNCTUATION = set("!&#$^<>-")


def _users(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ElastiCache users by user name."""
    users = resources_of_type(template_json, "AWS::ElastiCache::User").values()
    return {user["Properties"]["UserName"]: user["Properties"] for user in users}


def test_the_replication_group_is_encrypted_in_transit_and_at_rest(
    template: Template, config: EnvironmentConfig
) -> None:
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "Engine": config.cache.engine,
            "EngineVersion": config.cache.engine_version,
            "TransitEncryptionEnabled": True,
            "TransitEncryptionMode": "required",
            "AtRestEncryptionEnabled": True,
            "Port": 6379,
        },
    )


def test_the_cache_has_no_auth_token_and_signs_in_through_its_user_group(
    template_json: dict[str, Any], environment: str
) -> None:
    _, group = only_resource(template_json, "AWS::ElastiCache::ReplicationGroup")
    user_group_id, user_group = only_resource(template_json, "AWS::ElastiCache::UserGroup")

    assert "AuthToken" not in group["Properties"]
    assert group["Properties"]["UserGroupIds"] == [{"Ref": user_group_id}]
    assert group["Properties"]["ReplicationGroupId"] == f"flags-{environment}-cache-1"  # IAM tokens name it
    assert user_group["Properties"]["UserGroupId"] == f"flags-{environment}-users"


def test_the_service_user_signs_in_with_iam_and_the_default_user_is_switched_off(
    template_json: dict[str, Any], environment: str
) -> None:
    users = _users(template_json)
    _, user_group = only_resource(template_json, "AWS::ElastiCache::UserGroup")
    by_ref = {
        key: value["Properties"]["UserName"]
        for key, value in resources_of_type(template_json, "AWS::ElastiCache::User").items()
    }
    service, default = users[f"flags-{environment}-service"], users["default"]

    assert sorted(by_ref[ref["Ref"]] for ref in user_group["Properties"]["UserIds"]) == sorted(users)
    assert service["AuthenticationMode"] == {"Type": "iam"} and service["UserId"] == service["UserName"]
    assert default["AccessString"].split()[0] == "off"  # nobody signs in as default
    assert default["UserId"] == f"flags-{environment}-default"  # user ids are unique per account and region


def test_the_default_user_password_is_generated_from_characters_elasticache_accepts(
    template_json: dict[str, Any],
) -> None:
    (password,) = _users(template_json)["default"]["AuthenticationMode"]["Passwords"]
    secret_id = next(part["Ref"] for part in password["Fn::Join"][1] if isinstance(part, dict))
    generator = template_json["Resources"][secret_id]["Properties"]["GenerateSecretString"]

    assert password["Fn::Join"][1][0] == "{{resolve:secretsmanager:"  # never in the template itself
    possible = set(string.ascii_letters + string.digits + string.punctuation) - set(generator["ExcludeCharacters"])
    assert possible - set(string.ascii_letters + string.digits) == ELASTICACHE_AUTH_PUNCTUATION
    assert 16 <= generator["PasswordLength"] <= 128 and not generator.get("IncludeSpace", False)


def test_node_count_and_failover_follow_the_environment(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "CacheNodeType": config.cache.node_type,
            "NumCacheClusters": 1 + config.cache.replicas,
            "AutomaticFailoverEnabled": config.cache.replicas > 0,
            "MultiAZEnabled": config.cache.multi_az,
        },
    )


def test_prod_has_a_replica_with_multi_az_failover_and_dev_a_single_node(template: Template, environment: str) -> None:
    expected = {
        "dev": {"NumCacheClusters": 1, "MultiAZEnabled": False},
        "staging": {"NumCacheClusters": 2, "MultiAZEnabled": True, "AutomaticFailoverEnabled": True},
        "prod": {"NumCacheClusters": 2, "MultiAZEnabled": True, "AutomaticFailoverEnabled": True},
    }[environment]

    template.has_resource_properties("AWS::ElastiCache::ReplicationGroup", expected)


def test_the_parameter_group_logs_slow_commands_and_never_evicts_keys_without_ttl(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElastiCache::ParameterGroup",
        {
            "Properties": {
                "slowlog-log-slower-than": "10000",
                "maxmemory-policy": Match.string_like_regexp(r"^volatile-(lru|ttl)$"),
            }
        },
    )


def test_the_replication_group_uses_that_parameter_group_and_the_isolated_subnets(
    template_json: dict[str, Any],
) -> None:
    _, group = only_resource(template_json, "AWS::ElastiCache::ReplicationGroup")
    parameter_group_id, _ = only_resource(template_json, "AWS::ElastiCache::ParameterGroup")
    subnet_group_id, subnet_group = only_resource(template_json, "AWS::ElastiCache::SubnetGroup")
    subnet_ids = {key for key in resources_of_type(template_json, "AWS::EC2::Subnet")}

    assert group["Properties"]["CacheParameterGroupName"] == {"Ref": parameter_group_id}
    assert group["Properties"]["CacheSubnetGroupName"] == {"Ref": subnet_group_id}
    assert {ref["Ref"] for ref in subnet_group["Properties"]["SubnetIds"]} == subnet_ids


def test_the_slow_log_is_delivered_to_cloudwatch(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "LogDeliveryConfigurations": [
                Match.object_like({"LogType": "slow-log", "DestinationType": "cloudwatch-logs"})
            ]
        },
    )
