"""The four steps of a Secrets Manager rotation, one module each. Every module exposes ``run(dependencies, secret_id, token)``."""
