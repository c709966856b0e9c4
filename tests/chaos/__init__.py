"""Chaos with nothing lost that is not counted (issue 11 §3): agents publish numbered reports
at a known rate while the collector is SIGKILLed, InfluxDB stops, Mosquitto restarts or the
SQLite file's filesystem fills up; afterwards every report is found stored, or counted as
dropped. `scenarios` runs each case; the tests run them short, `bench/chaos.py` long."""
