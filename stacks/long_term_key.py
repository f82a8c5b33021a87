"""Long-term-key mode: the IAM user of one region whose service-specific credentials are the API keys.

IAM is global, but each regional stack creates its own user and CloudFormation names it after the
stack (``GemmaBatch-<region>-...``), so exactly one stack owns each user and deploying one region
never touches another region's user. The user has the inference-only managed policy and no
password or access key; its service-specific credentials for bedrock.amazonaws.com carry those
permissions. Only the rotation function may list, create and delete them, on this user only.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.nag import acknowledge

SERVICE_SPECIFIC_CREDENTIAL_ACTIONS = (
    "iam:CreateServiceSpecificCredential",
    "iam:DeleteServiceSpecificCredential",
    "iam:ListServiceSpecificCredentials",
)


class LongTermKeyUser(Construct):
    """The IAM user whose two credential slots the rotation function rotates."""

    def __init__(self, scope: Construct, construct_id: str, *, rotation_function: lambda_.Function,
                 key_age_days: int, retire_after_seconds: int, inference_policy_name: str) -> None:
        super().__init__(scope, construct_id)
        self.user = iam.User(
            self,
            "User",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(inference_policy_name)],
        )
        acknowledge(
            self.user,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{inference_policy_name}]",
            "A long-term Bedrock API key carries the permissions of its IAM user; this AWS managed policy is the "
            "inference-only permission set AWS defines for Bedrock Mantle keys, and the user holds nothing else.",
        )
        rotation_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RotateLongTermKeys",
                actions=list(SERVICE_SPECIFIC_CREDENTIAL_ACTIONS),
                resources=[self.user.user_arn],
            )
        )
        rotation_function.add_environment("KEY_MODE", "long_term")
        rotation_function.add_environment("LONG_TERM_KEY_USER_NAME", self.user.user_name)
        rotation_function.add_environment("LONG_TERM_KEY_AGE_DAYS", str(key_age_days))
        rotation_function.add_environment("LONG_TERM_KEY_RETIRE_AFTER_SECONDS", str(retire_after_seconds))
