"""The cache: encrypted, authenticated, sized per environment, with an explicit eviction policy."""

from __future__ import annotations

import string
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_resource, resources_of_type

ELASTICACHE_AUTH_PUNCTUATION = set("!&#$^<>-")


def _auth_secret(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The secret the replication group's AuthToken resolves to, followed by reference."""
    _, group = only_resource(template_json, "AWS::ElastiCache::ReplicationGroup")
    parts = group["Properties"]["AuthToken"]["Fn::Join"][1]
    logical_id = next(part["Ref"] for part in parts if isinstance(part, dict))
    return logical_id, template_json["Resources"][logical_id]


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


def test_the_auth_token_comes_from_secrets_manager_as_a_dynamic_reference(template_json: dict[str, Any]) -> None:
    _, group = only_resource(template_json, "AWS::ElastiCache::ReplicationGroup")
    _, secret = _auth_secret(template_json)

    assert group["Properties"]["AuthToken"]["Fn::Join"][1][0] == "{{resolve:secretsmanager:"
    assert secret["Type"] == "AWS::SecretsManager::Secret"


def test_the_auth_token_uses_only_characters_elasticache_accepts(template_json: dict[str, Any]) -> None:
    _, secret = _auth_secret(template_json)
    generator = secret["Properties"]["GenerateSecretString"]

    possible = set(string.ascii_letters + string.digits + string.punctuation) - set(generator["ExcludeCharacters"])
    assert possible - set(string.ascii_letters + string.digits) == ELASTICACHE_AUTH_PUNCTUATION
    assert not generator.get("IncludeSpace", False)
    assert 16 <= generator["PasswordLength"] <= 128
    assert "SecretStringTemplate" not in generator  # the whole secret string is the token


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
