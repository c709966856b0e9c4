"""Parsers: one module per source format, each a pure function from text to report fields."""
