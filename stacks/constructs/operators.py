"""Who may change flags: an IAM managed policy to attach to the on-call role or group of an environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.constructs.api import ADMIN_PATH, STAGE_NAME
from stacks.nag import acknowledge


class FlagOperators(Construct):
    """`execute-api:Invoke` on the admin routes of one API stage, and reading that API's reader key.

    Attach `policy` to the roles or groups of the people who run `flagctl` against this environment. The
    read routes use API keys, not IAM, so the policy also lets an operator fetch the readers' key value
    (`flagctl list` and `get`); it grants nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        admin_invoke_arn: str,
        api_logical_id: str,
        reader_key_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        reader_key_arn = f"arn:{stack.partition}:apigateway:{stack.region}::/apikeys/{reader_key_id}"
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Flag operators ({environment_name}): flag admin API (SigV4) and the readers' API key",
            statements=[
                iam.PolicyStatement(sid="FlagAdminApi", actions=["execute-api:Invoke"], resources=[admin_invoke_arn]),
                iam.PolicyStatement(sid="ReadersApiKey", actions=["apigateway:GET"], resources=[reader_key_arn]),
            ],
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{api_logical_id}>/{STAGE_NAME}/*/{ADMIN_PATH}/*]",
            "The wildcards are the HTTP method and the path below /admin of this one API and stage: "
            "an operator may call every admin route and no read route.",
        )
