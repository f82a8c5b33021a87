"""The input location of jobs' ``s3://`` images: a configured input bucket, or the results bucket's ``inputs/`` prefix.

The worker may only read there, and rejects any other ``s3://`` image as invalid. With no
``input_bucket_name`` configured, producers upload images under the results bucket's
``inputs/`` prefix, which the producer policy lets them write.
"""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from constructs import Construct

INPUTS_PREFIX = "inputs/"


class JobInputs(Construct):
    """The bucket and key prefix of job inputs. ``in_results_bucket`` is True when they share the results bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, input_bucket_name: str, results_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)

        self.in_results_bucket = not input_bucket_name
        if self.in_results_bucket:
            self.bucket: s3.IBucket = results_bucket
            self.prefix = INPUTS_PREFIX
        else:
            self.bucket = s3.Bucket.from_bucket_name(self, "InputBucket", input_bucket_name)
            self.prefix = ""

    @property
    def objects_arn(self) -> str:
        """The ARN pattern of every input object."""
        return self.bucket.arn_for_objects(f"{self.prefix}*")

    @property
    def location(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.prefix}"
