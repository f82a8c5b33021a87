"""Local runs without AWS Lambda: the SQS delivery driver that replaces Lambda's event source mapping."""
