"""Prefect tasks: thin wrappers that run one mww_core stage each and publish its results."""
