"""The worker function: reads Gemma 4 jobs from SQS, calls bedrock-mantle and stores the results in S3.

The Lambda handler is ``worker.handler.lambda_handler``.
"""
