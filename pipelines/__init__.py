"""Prefect flows that run the DVC pipelines (imported only by Prefect workers and tests)."""
