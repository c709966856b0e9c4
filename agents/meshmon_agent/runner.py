"""Command runners: the real one runs tools, the canned one reads captured outputs (tests, demo)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], str | None]
"""Runs a command and returns its stdout, or None when the tool is missing or fails."""


class SubprocessRunner:
    """Runs commands for real; a missing tool is logged once and then skipped quietly."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._missing: set[str] = set()

    def __call__(self, argv: Sequence[str]) -> str | None:
        """Run `argv`; None if the tool is missing, fails or times out."""
        tool = argv[0]
        if tool in self._missing:
            return None
        if shutil.which(tool) is None:
            self._missing.add(tool)
            log.info("%s not found: its collectors are skipped", tool)
            return None
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, errors="replace",
                timeout=self.timeout_s, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", " ".join(argv), exc)
            return None
        if done.returncode != 0:
            log.debug("%s exited %d: %s", " ".join(argv), done.returncode, done.stderr.strip())
            return None
        return done.stdout


def canned_name(argv: Sequence[str]) -> str:
    """File name of a command's captured output: `iw dev wlan0 info` → `iw_dev_wlan0_info.txt`."""
    return "_".join(argv) + ".txt"


class CannedRunner:
    """Answers commands from files in a directory (see canned_name); absent file = missing tool."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __call__(self, argv: Sequence[str]) -> str | None:
        """The captured output of `argv`, or None if there is none."""
        path = self.directory / canned_name(argv)
        try:
            return path.read_text(errors="replace")
        except OSError:
            return None
