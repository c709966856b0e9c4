"""Interface counters that only grow while a device runs, whatever width its agent has.

ifHC* counters are 64 bit and pass through. A Counter32 (ifInOctets…) wraps at 2³² — at
1 Gbit/s every 34 s — and would look like a reset to anything computing rates. Each
Counter32 is widened: when it is lower than last poll and the device did not reboot
(sysUpTime still grows), it wrapped, and 2³² is added to an offset kept per counter. When
the device rebooted, its counters restart from 0 like an agent's: the published value
drops, `sys.uptime_s` drops with it, and rates downstream use `non_negative_derivative`
(InfluxDB, Grafana) so a reset never becomes a negative rate. A counter that wrapped more
than once between two polls cannot be told apart; poll fast links often enough (a
Counter32 at 1 Gbit/s needs polls under 34 s, or an agent with ifHC* counters).
"""

from __future__ import annotations

WRAP_32 = 1 << 32


class CounterWidener:
    """Per-device state: last raw value and wrap offset of every Counter32."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._offset: dict[tuple[str, str], int] = {}
        self.wraps = 0

    def reset(self) -> None:
        """The device rebooted: its counters start again from zero."""
        self._last.clear()
        self._offset.clear()

    def widen(self, key: tuple[str, str], raw: int, bits: int) -> int:
        """The monotonic value of counter `key` (iface, name) read as `raw`."""
        if bits != 32:
            return raw
        last = self._last.get(key)
        offset = self._offset.get(key, 0)
        if last is not None and raw < last:
            offset += WRAP_32
            self._offset[key] = offset
            self.wraps += 1
        self._last[key] = raw
        return raw + offset
