"""The source of truth: an RDS PostgreSQL instance, private, encrypted, backed up."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import DatabaseConfig
from stacks.constructs.network import DATABASE_PORT, ISOLATED

DATABASE_NAME = "flags"
MASTER_USERNAME = "flags_admin"


def postgres_engine(version: str) -> rds.IInstanceEngine:
    """The engine for a full version such as "17.9"; a version this CDK release does not know fails synth."""
    constant = getattr(rds.PostgresEngineVersion, "VER_" + version.replace(".", "_"), None)
    if constant is None:
        raise ValueError(f"aws-cdk-lib knows no PostgreSQL {version}; pick one of rds.PostgresEngineVersion")
    return rds.DatabaseInstanceEngine.postgres(version=constant)


class FlagDatabase(Construct):
    """A single PostgreSQL instance in the isolated subnets, reachable only through `security_group`.

    Credentials are generated into Secrets Manager in RDS's JSON shape (host, port, username, password,
    dbname), which the runtime reads through DB_SECRET_ARN. Minor upgrades are deliberate (the version in
    cdk.json, staging first), TLS is forced, and `max_connections` is explicit so the function's reserved
    concurrency can be checked against it (stacks/config.py). Backups enable point-in-time restore.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DatabaseConfig,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        engine = postgres_engine(config.postgres_version)
        keep_data = removal_policy == cdk.RemovalPolicy.RETAIN
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="Flag database: TLS only, explicit connection ceiling",
            parameters={"max_connections": str(config.max_connections), "rds.force_ssl": "1"},
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(config.instance_type),
            vpc=vpc,
            vpc_subnets=ISOLATED,
            security_groups=[security_group],
            port=DATABASE_PORT,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(MASTER_USERNAME),
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=config.allocated_storage_gib,
            max_allocated_storage=config.max_allocated_storage_gib,
            storage_encrypted=True,
            publicly_accessible=False,
            multi_az=config.multi_az,
            backup_retention=cdk.Duration.days(config.backup_retention_days),
            delete_automated_backups=not keep_data,
            copy_tags_to_snapshot=True,
            deletion_protection=config.deletion_protection,
            auto_minor_version_upgrade=False,
            removal_policy=removal_policy,
        )
        assert self.instance.secret is not None  # generated credentials always create one
        self.secret: secretsmanager.ISecret = self.instance.secret
        # Credentials follow the data: a retained or snapshotted database is useless without its password.
        keep_credentials = removal_policy != cdk.RemovalPolicy.DESTROY
        self._generated_secret.apply_removal_policy(
            cdk.RemovalPolicy.RETAIN if keep_credentials else cdk.RemovalPolicy.DESTROY
        )
        self.port = DATABASE_PORT
        self._acknowledge(config)

    @property
    def _generated_secret(self) -> secretsmanager.Secret:
        """The generated secret itself, not the attachment that `instance.secret` returns."""
        secret = self.instance.node.find_child("Secret")
        assert isinstance(secret, secretsmanager.Secret)
        return secret

    def _acknowledge(self, config: DatabaseConfig) -> None:
        acknowledge = cdk.Validations.of(self.instance).acknowledge
        acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-RDS11",
                reason="Default port 5432 on purpose: only the function security groups may reach it; a "
                "non-default port adds no protection inside an isolated VPC.",
            )
        )
        if not config.multi_az:
            acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-RDS3",
                    reason="Single-AZ outside prod to halve the cost; prod is Multi-AZ. Backups and "
                    "point-in-time restore cover an AZ loss in dev and staging.",
                )
            )
        if not config.deletion_protection:
            acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-RDS10",
                    reason="Dev and staging are torn down with their stacks; prod has deletion protection "
                    "and a RETAIN removal policy.",
                )
            )
        cdk.Validations.of(self._generated_secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Not rotated yet: containers cache the credentials for up to 5 minutes and would fail "
                "to reconnect after a single-user rotation. Follow-up: alternating-users rotation.",
            )
        )
