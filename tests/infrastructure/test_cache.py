"""The cache: encrypted, authenticated, sized per environment, with an explicit eviction policy."""

from __future__ import annotations

import string

from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_id

ELASTICACHE_AUTH_PUNCTUATION = set("!&#$^<>-")
GROUP = "AWS::ElastiCache::ReplicationGroup"
USER_GROUP = "AWS::ElastiCache::UserGroup"
USER = "AWS::ElastiCache::User"


def test_the_replication_group_is_encrypted_in_transit_and_at_rest(
    template: Template, config: EnvironmentConfig
) -> None:
    template.has_resource_properties(
        GROUP,
        {
            "Engine": config.cache.engine,
            "EngineVersion": config.cache.engine_version,
            "TransitEncryptionEnabled": True,
            "TransitEncryptionMode": "required",
            "AtRestEncryptionEnabled": True,
            "Port": 6379,
        },
    )


def test_the_cache_has_no_auth_token_and_signs_in_through_its_user_group(template: Template, environment: str) -> None:
    user_group = only_id(template, USER_GROUP)
    template.resource_count_is(GROUP, 1)

    template.has_resource_properties(
        GROUP,
        {
            "AuthToken": Match.absent(),
            "UserGroupIds": [{"Ref": user_group}],
            "ReplicationGroupId": f"flags-{environment}-cache-1",  # IAM tokens name it
        },
    )
    template.has_resource_properties(USER_GROUP, {"UserGroupId": f"flags-{environment}-users"})


def test_the_service_user_signs_in_with_iam_and_the_default_user_is_switched_off(
    template: Template, environment: str
) -> None:
    # Given the users of the user group
    members = Capture()
    template.has_resource_properties(USER_GROUP, {"UserIds": members})

    # Then it holds every user: the service's, signing in with IAM, and `default`, switched off
    assert sorted(ref["Ref"] for ref in members.as_array()) == sorted(template.find_resources(USER))
    service = f"flags-{environment}-service"
    template.has_resource_properties(
        USER, {"UserName": service, "UserId": service, "AuthenticationMode": Match.exact({"Type": "iam"})}
    )
    template.has_resource_properties(
        USER,
        {
            "UserName": "default",
            "AccessString": Match.string_like_regexp(r"^off\s"),  # nobody signs in as default
            "UserId": f"flags-{environment}-default",  # user ids are unique per account and region
        },
    )


def test_the_default_user_password_is_generated_from_characters_elasticache_accepts(template: Template) -> None:
    # Given the default user's password, resolved from a secret at deploy time (never in the template itself)
    secret = Capture()
    resolved = {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret}, Match.any_value()]]}
    template.has_resource_properties(USER, {"UserName": "default", "AuthenticationMode": {"Passwords": [resolved]}})

    # When that secret's generator is read
    secrets = template.find_resources("AWS::SecretsManager::Secret")
    generator = secrets[secret.as_string()]["Properties"]["GenerateSecretString"]

    # Then it draws only from characters ElastiCache accepts, at a length it accepts
    possible = set(string.ascii_letters + string.digits + string.punctuation) - set(generator["ExcludeCharacters"])
    assert possible - set(string.ascii_letters + string.digits) == ELASTICACHE_AUTH_PUNCTUATION
    assert 16 <= generator["PasswordLength"] <= 128 and not generator.get("IncludeSpace", False)


def test_node_count_and_failover_follow_the_environment(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        GROUP,
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

    template.has_resource_properties(GROUP, expected)


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


def test_the_replication_group_uses_that_parameter_group_and_the_isolated_subnets(template: Template) -> None:
    # Given the parameter group and the subnet group, and the subnet group's members
    parameter_group = only_id(template, "AWS::ElastiCache::ParameterGroup")
    subnet_group = only_id(template, "AWS::ElastiCache::SubnetGroup")
    members = Capture()
    template.has_resource_properties("AWS::ElastiCache::SubnetGroup", {"SubnetIds": members})

    # Then the one cache uses both, and the subnet group holds every (isolated) subnet
    template.resource_count_is(GROUP, 1)
    template.has_resource_properties(
        GROUP, {"CacheParameterGroupName": {"Ref": parameter_group}, "CacheSubnetGroupName": {"Ref": subnet_group}}
    )
    assert {ref["Ref"] for ref in members.as_array()} == set(template.find_resources("AWS::EC2::Subnet"))


def test_the_slow_log_is_delivered_to_cloudwatch(template: Template) -> None:
    template.has_resource_properties(
        GROUP,
        {
            "LogDeliveryConfigurations": [
                Match.object_like({"LogType": "slow-log", "DestinationType": "cloudwatch-logs"})
            ]
        },
    )
