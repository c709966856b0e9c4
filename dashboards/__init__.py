"""Grafana dashboards as code; `queries` runs their InfluxQL without Grafana."""
