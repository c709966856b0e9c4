"""meshmon agent: reads link quality on a router and reports it over MQTT (wire contract v1).

Standard library and paho-mqtt only; it must never import meshmon or pydantic.
"""

__version__ = "0.1.0"
