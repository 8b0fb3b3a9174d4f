"""The database: a pinned PostgreSQL, private, encrypted, backed up, and hard to lose in prod."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis, only_resource, resources_of_type


def test_postgres_runs_a_full_engine_version(template_json: dict[str, Any], config: EnvironmentConfig) -> None:
    _, instance = only_resource(template_json, "AWS::RDS::DBInstance")

    assert instance["Properties"]["Engine"] == "postgres"
    assert re.fullmatch(r"\d+\.\d+", instance["Properties"]["EngineVersion"])
    assert instance["Properties"]["EngineVersion"] == config.database.postgres_version
    assert instance["Properties"]["AutoMinorVersionUpgrade"] is False


def test_the_instance_is_private_and_encrypted(template: Template) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"StorageEncrypted": True, "PubliclyAccessible": False, "Port": "5432"}
    )


def test_rds_manages_and_rotates_the_master_password_itself(template_json: dict[str, Any]) -> None:
    """ManageMasterUserPassword: RDS keeps the password in a secret of its own and rotates it (every 7 days)."""
    _, instance = only_resource(template_json, "AWS::RDS::DBInstance")

    assert instance["Properties"]["ManageMasterUserPassword"] is True
    assert instance["Properties"]["MasterUsername"] == "flags_admin"
    assert "MasterUserPassword" not in instance["Properties"]  # no password in the template or in our secrets
    assert not resources_of_type(template_json, "AWS::SecretsManager::SecretTargetAttachment")
    assert not resources_of_type(template_json, "AWS::SecretsManager::RotationSchedule")  # RDS's own rotation


def test_backups_enable_point_in_time_restore(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {"BackupRetentionPeriod": config.database.backup_retention_days, "CopyTagsToSnapshot": True},
    )
    assert config.database.backup_retention_days >= 1


def test_availability_and_protection_follow_the_environment(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {"MultiAZ": config.database.multi_az, "DeletionProtection": config.database.deletion_protection},
    )


def test_prod_is_multi_az_protected_and_kept_on_stack_deletion(
    synthesis: Synthesis,
) -> None:
    prod = synthesis.template_json("prod")
    _, instance = only_resource(prod, "AWS::RDS::DBInstance")

    assert instance["Properties"]["MultiAZ"] is True and instance["Properties"]["DeletionProtection"] is True
    assert instance["DeletionPolicy"] == instance["UpdateReplacePolicy"] == "Retain"
    assert instance["Properties"]["DeleteAutomatedBackups"] is False  # RDS's secret stays with the instance


def test_dev_data_goes_with_its_stack(synthesis: Synthesis) -> None:
    _, instance = only_resource(synthesis.template_json("dev"), "AWS::RDS::DBInstance")

    assert instance["DeletionPolicy"] == "Delete"


def test_tls_is_forced_and_the_connection_ceiling_is_explicit(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {
            "Family": f"postgres{config.database.major_version}",
            "Parameters": {"rds.force_ssl": "1", "max_connections": str(config.database.max_connections)},
        },
    )


def test_the_instance_sits_in_the_isolated_subnets(template_json: dict[str, Any]) -> None:
    _, subnet_group = only_resource(template_json, "AWS::RDS::DBSubnetGroup")
    subnet_ids = set(resources_of_type(template_json, "AWS::EC2::Subnet"))

    assert {ref["Ref"] for ref in subnet_group["Properties"]["SubnetIds"]} == subnet_ids


def test_gp3_storage_can_grow(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "StorageType": "gp3",
            "AllocatedStorage": str(config.database.allocated_storage_gib),
            "MaxAllocatedStorage": Match.any_value(),
        },
    )
