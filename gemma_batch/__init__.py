"""Tools that users run next to the CDK app: the Mantle emulator and the local SQS delivery driver.

Run ``python -m gemma_batch --help`` for the command line.
"""
