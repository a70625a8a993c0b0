"""mww: wake-word training for microcontrollers (plain library, no Prefect)."""

__version__ = "0.1.0"
