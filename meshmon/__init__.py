"""meshmon: monitoring for community mesh networks."""

__version__ = "0.1.0"
