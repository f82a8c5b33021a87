"""The rollout pipeline: CDK Pipelines deploys the regional stacks in waves, canary first.

Each region's stage deploys the usual ``GemmaBatch-<region>`` stack, then runs two CodeBuild
steps: a smoke test that submits one job and waits for its result, and an alarm-gated bake that
fails the stage if the region's 429, 503 or dead-letter alarm enters ALARM during the bake. A
failed step stops the pipeline before the next wave. An optional manual approval guards the last
wave.

The steps' roles live in the pipeline stack, because the CodeBuild projects need them first. Each
region's stack attaches a policy to them that names its own queue, bucket, key and alarms,
because the pipeline stack cannot reference those across regions.
"""

from __future__ import annotations

import re

from aws_cdk import CfnOutput, Duration, Environment, Fn, RemovalPolicy, Stack, Stage
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks
from constructs import Construct

from stacks.alarm_definitions import DEAD_LETTER_QUEUE_NOT_EMPTY, THROTTLED_429_RATE, UNAVAILABLE_503_RATE
from stacks.config import PipelineSettings, Settings
from stacks.nag import (
    GeneratedFindingReason,
    acknowledge,
    acknowledge_generated_findings,
    acknowledge_single_role_policies,
    record_rule_packs,
)
from stacks.regional_stack import RegionalStack, stack_name
from stacks.results_store import FAILURES_PREFIX, RESULTS_PREFIX
from stacks.rules.gemma_batch_checks import GemmaBatchChecks

PIPELINE_STACK_NAME = "GemmaBatch-Pipeline"
# The alarms the bake watches, by their construct id in the Alarms construct.
BAKE_ALARMS = (THROTTLED_429_RATE, UNAVAILABLE_503_RATE, DEAD_LETTER_QUEUE_NOT_EMPTY)
# Every smoke job id starts with this, so the smoke role may read only smoke results.
SMOKE_JOB_PREFIX = "rollout-smoke-"
SMOKE_TIMEOUT = Duration.minutes(20)
# NOTE: no pipeline built here has run in AWS; this image is assumed to provide the Node.js and
# Python that the synth step's npm ci, venv and pip commands need, as a developer machine does.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
INSTALL_ROLLOUT_TOOLS = "python3 -m pip install --quiet --disable-pip-version-check -r tools/requirements-rollout.txt"

_S3_GRANT_ACTIONS = "(Abort|DeleteObject|GetBucket|GetObject|List)"
# Findings on the policies and projects that CDK Pipelines and CodePipeline generate (aws-cdk-lib
# 2.275.0), each with the statement it comes from.
GENERATED_FINDING_REASONS = (
    GeneratedFindingReason(
        re.compile(rf"(AwsSolutions-IAM5|GemmaBatch-NoWildcardActions)\[Action::s3:{_S3_GRANT_ACTIONS}\*\]"),
        "CDK's bucket grants use these S3 action groups; CDK Pipelines grants them on the pipeline's artifact and "
        "replication buckets only, which hold templates and function code, never job data.",
    ),
    GeneratedFindingReason(
        re.compile(r"(AwsSolutions-IAM5|GemmaBatch-NoWildcardActions)\[Action::kms:(GenerateDataKey|ReEncrypt)\*\]"),
        "CDK's key grants use these KMS action groups; CDK Pipelines grants them on the artifact keys only, so the "
        "roles can encrypt and decrypt pipeline artifacts.",
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::<Artifacts[0-9A-F]{8}\.Arn>/\*\]"),
        "Objects of the pipeline's own artifact bucket, which CodePipeline writes under a new key per execution.",
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:s3:::gemmabatch-pipeline-[a-z0-9]+/\*\]"),
        "Objects of CodePipeline's replication bucket in a deploy region, which hold copies of the artifacts.",
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:logs:[a-z0-9-]+:\d{12}:log-group:/aws/codebuild/.+\]"),
        "CodeBuild writes each build's log stream, named after the build, in its project's log group.",
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:codebuild:[a-z0-9-]+:\d{12}:report-group/.+\]"),
        "CodeBuild creates test report groups named after the project; the builds here publish no reports.",
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::arn:\*:iam::\d{12}:role/\*\]"),
        "Self-mutation assumes the CDK bootstrap roles of each region; a condition on the aws-cdk:bootstrap-role "
        "tag limits it to the deploy, file-publishing and image-publishing roles.",
        re.compile(r"/UpdatePipeline/SelfMutation/Role/"),
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::\*\]"),
        "cloudformation:DescribeStacks and s3:ListBucket, which cdk deploy uses to find the bootstrap stack and "
        "bucket of each region; neither reads job data.",
        re.compile(r"/UpdatePipeline/SelfMutation/Role/"),
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::\*\]"),
        "codebuild:StartBuild, StopBuild and BatchGetBuilds for the asset publishing project, which CDK Pipelines "
        "grants without naming the project.",
        re.compile(r"/Assets/FileRole/"),
    ),
    GeneratedFindingReason(
        re.compile(r"AwsSolutions-IAM5\[Resource::\*\]"),
        "KMS actions on the replication keys of the deploy regions, which CodePipeline references by alias "
        "from other stacks, so CDK cannot name their ARNs.",
        re.compile(r"/CodePipeline/Role/"),
    ),
    GeneratedFindingReason(
        re.compile(r"HIPAA\.Security-CodeBuildProjectSourceRepoUrl"),
        "The project's source is the pipeline artifact (source type CODEPIPELINE), not a repository URL; the "
        "pipeline reads the repository through the CodeConnections connection, so no project stores a credential.",
    ),
)


def smoke_role_name(region: str) -> str:
    return f"GemmaBatch-rollout-smoke-{region}"


def bake_role_name(region: str) -> str:
    return f"GemmaBatch-rollout-bake-{region}"


class RolloutCheckAccess(Construct):
    """Inside one region's stack: the policies of that region's smoke and bake roles, and the outputs they read."""

    def __init__(self, stack: RegionalStack, construct_id: str) -> None:
        super().__init__(stack, construct_id)
        region = stack.region
        pool = _child(stack, "WorkerPool")
        results = _child(stack, "ResultsStore")
        encryption = _child(stack, "Encryption")
        alarms = [_child(stack, "Alarms").alarms[name] for name in BAKE_ALARMS]

        self.job_queue_url = _child(stack, "JobQueueUrl")
        self.results_bucket_name = _child(stack, "ResultsBucketName")
        self.bake_alarm_names = CfnOutput(
            self, "BakeAlarmNames", value=Fn.join(",", [alarm.alarm_name for alarm in alarms]),
            description="Alarms the rollout bake watches: 429 rate, 503 rate, dead-letter queue",
        )

        smoke_objects = [
            results.bucket.arn_for_objects(f"{prefix}{SMOKE_JOB_PREFIX}*") for prefix in (RESULTS_PREFIX, FAILURES_PREFIX)
        ]
        iam.Policy(
            self,
            "SmokePolicy",
            roles=[iam.Role.from_role_name(self, "SmokeRole", smoke_role_name(region))],
            statements=[
                iam.PolicyStatement(sid="SubmitSmokeJob", actions=["sqs:SendMessage"],
                                    resources=[pool.job_queue.queue_arn]),
                iam.PolicyStatement(sid="ReadSmokeResult", actions=["s3:GetObject"], resources=smoke_objects),
                iam.PolicyStatement(
                    sid="FindSmokeResult",
                    actions=["s3:ListBucket"],
                    resources=[results.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}{SMOKE_JOB_PREFIX}*"
                                                             for prefix in (RESULTS_PREFIX, FAILURES_PREFIX)]}},
                ),
                # SQS encrypts the job with a data key from the CMK; S3 decrypts the result with it.
                iam.PolicyStatement(sid="UseDataKey", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                    resources=[encryption.data_key.key_arn]),
            ],
        )
        for prefix in (RESULTS_PREFIX, FAILURES_PREFIX):
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::<{_logical_id(results.bucket)}.Arn>/{prefix}{SMOKE_JOB_PREFIX}*]",
                "The smoke test reads the record of its own job, whose id it draws at run time; the prefix limits "
                "it to smoke jobs, so it never reads a user's result.",
            )
        iam.Policy(
            self,
            "BakePolicy",
            roles=[iam.Role.from_role_name(self, "BakeRole", bake_role_name(region))],
            statements=[
                iam.PolicyStatement(sid="WatchBakeAlarms", actions=["cloudwatch:DescribeAlarms"],
                                    resources=[alarm.alarm_arn for alarm in alarms]),
            ],
        )


class RegionStage(Stage):
    """One region's deployment: the same ``GemmaBatch-<region>`` stack as a manual deploy, plus rollout access."""

    def __init__(self, scope: Construct, *, settings: Settings, region: str, bundle: bool) -> None:
        super().__init__(scope, f"Deploy-{region}", env=Environment(account=settings.account, region=region))
        self.stack = RegionalStack(self, settings=settings.for_region(region), account=settings.account, bundle=bundle)
        self.rollout_access = RolloutCheckAccess(self.stack, "RolloutChecks")
        # CDK Pipelines synthesizes the stage when the pipeline adds it, so everything goes in now.
        acknowledge_single_role_policies(self.stack)
        record_rule_packs(self.stack, settings.nag_packs)


class PipelineStack(Stack):
    """The pipeline, its artifact bucket and the roles of the rollout steps."""

    def __init__(self, scope: Construct, *, settings: Settings) -> None:
        pipeline_settings = settings.pipeline
        assert pipeline_settings is not None and settings.account is not None
        super().__init__(
            scope,
            PIPELINE_STACK_NAME,
            env=Environment(account=settings.account, region=pipeline_settings.region),
            description="Deploys Gemma batch region by region, canary first, with a smoke test and an alarm bake",
        )
        source = pipelines.CodePipelineSource.connection(
            pipeline_settings.repository, pipeline_settings.branch, connection_arn=pipeline_settings.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            code_pipeline=self._code_pipeline(),
            synth=pipelines.ShellStep(
                "Synth",
                input=source,
                install_commands=[
                    "npm ci --no-audit --no-fund",
                    "python3 -m venv .venv",
                    ".venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt",
                ],
                commands=["node_modules/.bin/cdk synth --quiet"],
            ),
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
            ),
            publish_assets_in_parallel=False,
        )
        self.stages: list[RegionStage] = []
        for index, wave_regions in enumerate(pipeline_settings.waves):
            last_wave = index == len(pipeline_settings.waves) - 1
            pre = []
            if last_wave and pipeline_settings.manual_approval:
                pre.append(pipelines.ManualApprovalStep(
                    "ApproveLastWave",
                    comment=f"Approve deploying {', '.join(wave_regions)} after the earlier waves passed their checks.",
                ))
            wave = self.pipeline.add_wave(_wave_name(index, wave_regions), pre=pre)
            for region in wave_regions:
                stage = RegionStage(self, settings=settings, region=region, bundle=settings.bundling)
                wave.add_stage(stage, post=self._checks(stage, source, pipeline_settings))
                self.stages.append(stage)
        # Build now, so the generated roles and projects exist for the acknowledgements below.
        self.pipeline.build_pipeline()
        self._acknowledge_replication_buckets()
        acknowledge_generated_findings(
            self, (AwsSolutionsChecks, GemmaBatchChecks, HIPAASecurityChecks), GENERATED_FINDING_REASONS
        )

    def _code_pipeline(self) -> codepipeline.Pipeline:
        key = kms.Key(self, "ArtifactKey", description="Encrypts the Gemma batch pipeline's artifacts",
                      enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY)
        logs_bucket = s3.Bucket(
            self,
            "ArtifactAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(90),
                                              noncurrent_version_expiration=Duration.days(7))],
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(logs_bucket, f"{pack}-S3DefaultEncryptionKMS",
                        "S3 server access logs can be delivered only to a bucket encrypted with S3-managed keys "
                        "(SSE-S3); the logs hold request metadata, never artifact content.")
            acknowledge(logs_bucket, f"{pack}-S3BucketReplicationEnabled",
                        "Access logs of the artifact bucket stay in the pipeline's region with the bucket they "
                        "describe; versioning keeps them from being overwritten.")
        artifacts = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=logs_bucket,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireArtifacts", expiration=Duration.days(30),
                                              noncurrent_version_expiration=Duration.days(7))],
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(artifacts, f"{pack}-S3BucketReplicationEnabled",
                        "Pipeline artifacts are rebuilt from the repository by every execution and expire after 30 "
                        "days; a copy in another region would protect nothing that a new execution cannot make.")
        return codepipeline.Pipeline(
            self,
            "CodePipeline",
            artifact_bucket=artifacts,
            pipeline_type=codepipeline.PipelineType.V2,
            restart_execution_on_update=True,
            cross_account_keys=True,
            enable_key_rotation=True,
        )

    def _acknowledge_replication_buckets(self) -> None:
        """Acknowledge findings on the replication buckets CodePipeline creates in each deploy region's support stack."""
        for support in self.pipeline.pipeline.cross_region_support.values():
            bucket = support.replication_bucket
            acknowledge(bucket, "AwsSolutions-S1",
                        "CodePipeline creates this bucket for copies of the pipeline artifacts in a deploy region; "
                        "CloudTrail records the pipeline's own access, and no person or workload uses it.")
            for pack in ("NIST.800.53.R5", "HIPAA.Security"):
                acknowledge(bucket, f"{pack}-S3BucketVersioningEnabled",
                            "The bucket holds copies of artifacts that every pipeline execution writes anew; an "
                            "overwritten copy is rebuilt by the next execution.")
                acknowledge(bucket, f"{pack}-S3BucketReplicationEnabled",
                            "The bucket is itself CodePipeline's regional copy of the pipeline artifacts.")

    def _checks(self, stage: RegionStage, source: pipelines.IFileSetProducer,
                pipeline_settings: PipelineSettings) -> list[pipelines.Step]:
        region = stage.stack.region
        access = stage.rollout_access
        smoke = pipelines.CodeBuildStep(
            f"SmokeTest-{region}",
            input=source,
            install_commands=[INSTALL_ROLLOUT_TOOLS],
            commands=[
                f'python3 tools/smoke_test.py --region {region} --queue-url "$JOB_QUEUE_URL" '
                f'--bucket "$RESULTS_BUCKET" --job-id-prefix {SMOKE_JOB_PREFIX} '
                f"--timeout-seconds {int(SMOKE_TIMEOUT.to_seconds())}"
            ],
            env_from_cfn_outputs={"JOB_QUEUE_URL": access.job_queue_url, "RESULTS_BUCKET": access.results_bucket_name},
            role=self._step_role(f"SmokeRole-{region}", smoke_role_name(region), f"smoke test in {region}"),
            timeout=SMOKE_TIMEOUT.plus(Duration.minutes(10)),
        )
        bake = pipelines.CodeBuildStep(
            f"AlarmBake-{region}",
            input=source,
            install_commands=[INSTALL_ROLLOUT_TOOLS],
            commands=[
                f'python3 tools/alarm_bake.py --region {region} --alarm-names "$BAKE_ALARM_NAMES" '
                f"--minutes {pipeline_settings.bake_minutes}"
            ],
            env_from_cfn_outputs={"BAKE_ALARM_NAMES": access.bake_alarm_names},
            role=self._step_role(f"BakeRole-{region}", bake_role_name(region), f"alarm bake in {region}"),
            timeout=Duration.minutes(pipeline_settings.bake_minutes + 10),
        )
        bake.add_step_dependency(smoke)
        return [smoke, bake]

    def _step_role(self, construct_id: str, role_name: str, purpose: str) -> iam.Role:
        # A fixed name, so the regional stack can attach its policy without a cross-region reference.
        return iam.Role(
            self,
            construct_id,
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"CodeBuild role of the Gemma batch {purpose}",
        )


def _wave_name(index: int, regions: tuple[str, ...]) -> str:
    kind = "Canary" if index == 0 else f"Wave{index + 1}"
    return f"{kind}-{'-'.join(regions)}"


def _child(scope: Construct, construct_id: str) -> object:
    child = scope.node.try_find_child(construct_id)
    if child is None:
        raise LookupError(
            f"the rollout checks need {construct_id!r} in {scope.node.path}, but it is missing; "
            "update stacks/pipeline.py to the regional stack's constructs"
        )
    return child


def _logical_id(bucket: s3.IBucket) -> str:
    return Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
