"""meshmon-bridge: publishes the v1 contract for devices and networks that run no agent."""

__version__ = "0.1.0"
