"""Human and producer access to a region: the operator role and the job producer policy."""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge

MANTLE_FULL_ACCESS_POLICY = "AmazonBedrockMantleFullAccess"


class OperatorAccess(Construct):
    """The operator role, for people who manage Bedrock Mantle (API keys, quotas) in this region."""

    def __init__(self, scope: Construct, construct_id: str, *, trusted_principals: tuple[str, ...]) -> None:
        super().__init__(scope, construct_id)

        # By default the role trusts this account, so the account's own IAM policies decide who
        # may assume it; configured principal ARNs replace that.
        if trusted_principals:
            assumed_by: iam.IPrincipal = iam.CompositePrincipal(*(iam.ArnPrincipal(arn) for arn in trusted_principals))
        else:
            assumed_by = iam.AccountRootPrincipal()

        self.role = iam.Role(
            self,
            "OperatorRole",
            assumed_by=assumed_by,
            description="Operators of Gemma batch: full access to Amazon Bedrock Mantle in this account",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(MANTLE_FULL_ACCESS_POLICY)],
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{MANTLE_FULL_ACCESS_POLICY}]",
            "The operator role exists to carry this AWS managed policy: AWS maintains the Bedrock Mantle "
            "actions it grants as the service adds them, and only principals the account allows may assume it.",
        )


class JobProducerPolicy(Construct):
    """A managed policy that job producers attach to submit jobs and read results."""

    def __init__(self, scope: Construct, construct_id: str, *, job_queue: sqs.IQueue, results_bucket: s3.IBucket,
                 data_key: kms.IKey, result_prefixes: tuple[str, ...]) -> None:
        super().__init__(scope, construct_id)

        object_arns = [results_bucket.arn_for_objects(f"{prefix}*") for prefix in result_prefixes]
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Submit Gemma batch jobs and read their results in {Stack.of(self).region}",
            statements=[
                iam.PolicyStatement(
                    sid="SubmitJobs",
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                    resources=[job_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadResults",
                    actions=["s3:GetObject"],
                    resources=object_arns,
                ),
                iam.PolicyStatement(
                    sid="ListResults",
                    actions=["s3:ListBucket"],
                    resources=[results_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in result_prefixes]}},
                ),
                # SQS encrypts each message with a data key from the CMK; S3 decrypts results with it.
                iam.PolicyStatement(
                    sid="UseDataKey",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[data_key.key_arn],
                ),
            ],
        )
        for object_arn in result_prefixes:
            acknowledge(
                self.policy,
                f"AwsSolutions-IAM5[Resource::<{_logical_ref(results_bucket)}.Arn>/{object_arn}*]",
                "Producers read any result under this prefix: result keys are job ids, unknown until jobs run.",
            )


def allow_job_status(producers: JobProducerPolicy, *, job_state_table: dynamodb.ITable, inputs_arn: str | None,
                     results_bucket: s3.IBucket, stack_name: str) -> None:
    """Let producers read job status, find the stack's outputs, and upload images when inputs share the results bucket.

    The submit command (``python -m gemma_batch submit``) needs exactly these, besides sending jobs.
    """
    policy = producers.policy
    policy.add_statements(
        iam.PolicyStatement(
            sid="ReadJobStatus",
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            resources=[job_state_table.table_arn],
        ),
        iam.PolicyStatement(
            sid="FindStackOutputs",
            actions=["cloudformation:DescribeStacks"],
            resources=[Stack.of(policy).format_arn(service="cloudformation", resource="stack", resource_name=f"{stack_name}/*")],
        ),
    )
    # cdk-nag writes an unresolved account as <AWS::AccountId> and a configured one as its 12 digits.
    account = Stack.of(policy).account
    account_in_finding = "<AWS::AccountId>" if Token.is_unresolved(account) else account
    acknowledge(
        policy,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:{Stack.of(policy).region}:{account_in_finding}:"
        f"stack/{stack_name}/*]",
        "CloudFormation appends a generated id to a stack's ARN; the wildcard stands for that id of this one stack.",
    )
    if inputs_arn is not None:
        policy.add_statements(iam.PolicyStatement(sid="UploadInputs", actions=["s3:PutObject"], resources=[inputs_arn]))
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{_logical_ref(results_bucket)}.Arn>/inputs/*]",
            "Producers upload job images under the inputs/ prefix with names of their choosing; they cannot write "
            "results or failures.",
        )


def _logical_ref(bucket: s3.IBucket) -> str:
    return Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
