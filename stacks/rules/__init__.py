"""The project's cdk-nag rules, one rule per module named after it, and the GemmaBatch pack that runs them."""
