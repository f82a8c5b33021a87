"""Result storage: the results bucket and its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import RegionSettings
from stacks.nag import acknowledge

# The worker writes each job's result or failure under these prefixes, keyed by job id.
RESULTS_PREFIX = "results/"
FAILURES_PREFIX = "failures/"
RESULT_PREFIXES = (RESULTS_PREFIX, FAILURES_PREFIX)


class ResultsStore(Construct):
    """An encrypted, versioned, TLS-only results bucket whose objects expire after the retention period."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, data_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)

        # S3 server access logs can be delivered only to a bucket with S3-managed encryption.
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
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
            acknowledge(
                self.access_logs_bucket,
                f"{pack}-S3DefaultEncryptionKMS",
                "S3 server access logs can be delivered only to a bucket encrypted with S3-managed keys (SSE-S3); "
                "the logs hold request metadata, never job content.",
            )
            acknowledge(
                self.access_logs_bucket,
                f"{pack}-S3BucketReplicationEnabled",
                "Access logs of one region's results bucket stay in that region with the data they describe; "
                "versioning keeps them from being overwritten, and a copy elsewhere would widen where they live.",
            )

        self.bucket = s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="results-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireResults",
                    expiration=Duration.days(settings.result_retention_days),
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(
                self.bucket,
                f"{pack}-S3BucketReplicationEnabled",
                "Results stay in the region that ran the job, so prompts and answers never leave it; they expire "
                "after result_retention_days anyway, versioning guards against overwrites, and a lost result is "
                "recomputed by sending the job again.",
            )
