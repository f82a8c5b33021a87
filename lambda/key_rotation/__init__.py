"""The Secrets Manager rotation function that stores a fresh short-term Bedrock API key.

``handler.lambda_handler`` receives the four rotation steps (createSecret, setSecret,
testSecret, finishSecret). Each step lives in ``key_rotation.steps``; assuming the key-issuer
role and minting the key live in ``key_rotation.key_issuer``.
"""
