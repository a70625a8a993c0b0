"""Prefect flows composed from the tasks in ``tasks``."""
