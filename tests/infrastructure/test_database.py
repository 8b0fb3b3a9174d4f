"""The database: a pinned PostgreSQL, private, encrypted, backed up, and hard to lose in prod."""

from __future__ import annotations

import re

from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis

INSTANCE = "AWS::RDS::DBInstance"


def test_postgres_runs_a_full_engine_version(template: Template, config: EnvironmentConfig) -> None:
    template.resource_count_is(INSTANCE, 1)
    version = Capture()
    template.has_resource_properties(
        INSTANCE, {"Engine": "postgres", "EngineVersion": version, "AutoMinorVersionUpgrade": False}
    )

    assert re.fullmatch(r"\d+\.\d+", version.as_string())
    assert version.as_string() == config.database.postgres_version


def test_the_instance_is_private_and_encrypted(template: Template) -> None:
    template.has_resource_properties(INSTANCE, {"StorageEncrypted": True, "PubliclyAccessible": False, "Port": "5432"})


def test_rds_manages_and_rotates_the_master_password_itself(template: Template) -> None:
    """ManageMasterUserPassword: RDS keeps the password in a secret of its own and rotates it (every 7 days)."""
    template.resource_count_is(INSTANCE, 1)
    template.has_resource_properties(
        INSTANCE,
        {
            "ManageMasterUserPassword": True,
            "MasterUsername": "flags_admin",
            "MasterUserPassword": Match.absent(),  # no password in the template or in our secrets
        },
    )
    template.resource_count_is("AWS::SecretsManager::SecretTargetAttachment", 0)
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)  # RDS's own rotation


def test_backups_enable_point_in_time_restore(template: Template, config: EnvironmentConfig) -> None:
    retention = Capture()
    template.has_resource_properties(INSTANCE, {"BackupRetentionPeriod": retention, "CopyTagsToSnapshot": True})

    assert retention.as_number() == config.database.backup_retention_days >= 1


def test_availability_and_protection_follow_the_environment(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        INSTANCE,
        {"MultiAZ": config.database.multi_az, "DeletionProtection": config.database.deletion_protection},
    )


def test_prod_is_multi_az_protected_and_kept_on_stack_deletion(synthesis: Synthesis) -> None:
    prod = synthesis.template("prod")

    prod.resource_count_is(INSTANCE, 1)
    prod.has_resource(
        INSTANCE,
        {
            "Properties": {
                "MultiAZ": True,
                "DeletionProtection": True,
                "DeleteAutomatedBackups": False,  # RDS's secret stays with the instance
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_dev_data_goes_with_its_stack(synthesis: Synthesis) -> None:
    dev = synthesis.template("dev")

    dev.resource_count_is(INSTANCE, 1)
    dev.has_resource(INSTANCE, {"DeletionPolicy": "Delete"})


def test_tls_is_forced_and_the_connection_ceiling_is_explicit(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {
            "Family": f"postgres{config.database.major_version}",
            "Parameters": {"rds.force_ssl": "1", "max_connections": str(config.database.max_connections)},
        },
    )


def test_the_instance_sits_in_the_isolated_subnets(template: Template) -> None:
    template.resource_count_is("AWS::RDS::DBSubnetGroup", 1)
    members = Capture()
    template.has_resource_properties("AWS::RDS::DBSubnetGroup", {"SubnetIds": members})

    assert {ref["Ref"] for ref in members.as_array()} == set(template.find_resources("AWS::EC2::Subnet"))


def test_gp3_storage_can_grow(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        INSTANCE,
        {
            "StorageType": "gp3",
            "AllocatedStorage": str(config.database.allocated_storage_gib),
            "MaxAllocatedStorage": Match.any_value(),
        },
    )
