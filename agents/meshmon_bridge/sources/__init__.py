"""Source kinds of meshmon-bridge, one module (or package) per kind."""
