"""The ramp controller: a scheduled function that sets the worker pool's concurrency from its 503 and 429 counts."""
