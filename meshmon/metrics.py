"""A small Prometheus text-format registry: counters and gauges with labels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Counters are incremented in place; gauges can be values or callables read at scrape."""

    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._callbacks: dict[str, Callable[[], float | dict[Labels, float]]] = {}
        self.renders = 0
        """how many times `render` ran: gauges that share a costly reading keep it for one
        render (`service_metrics.SinkStats`)"""

    def describe(self, name: str, kind: str, help_text: str) -> None:
        self._help[name] = (kind, help_text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._values[name]
        series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        self._values[name][tuple(sorted(labels.items()))] = value

    def gauge_fn(self, name: str, fn: Callable[[], float | dict[Labels, float]]) -> None:
        """Register a gauge computed when /metrics is read."""
        self._callbacks[name] = fn

    def get(self, name: str, **labels: str) -> float:
        return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        self.renders += 1
        series: dict[str, dict[Labels, float]] = {k: dict(v) for k, v in self._values.items()}
        for name, fn in self._callbacks.items():
            value = fn()
            series[name] = value if isinstance(value, dict) else {(): float(value)}
        out: list[str] = []
        for name in sorted(series):
            kind, help_text = self._help.get(name, ("untyped", ""))
            if help_text:
                out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in sorted(series[name].items()):
                if labels:
                    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    out.append(f"{name}{{{inner}}} {_number(value)}")
                else:
                    out.append(f"{name} {_number(value)}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
