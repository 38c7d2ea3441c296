"""How much CPU other processes on the host take while we measure (Linux ``/proc``).

Timings on a small shared machine swing several-fold when anything else runs: with two
cores, a second busy process halves what torch gets, and libgomp's spin-waiting threads make
it worse. ``HostLoad`` measures the CPU used by everything except this process and the
subprocesses it names (in cores, averaged over a block), and can wait, within a total
budget, for the host to go quiet before a block starts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Block:
    """One measured stretch: its length and the other processes' average CPU use in it."""

    seconds: float = 0.0
    foreign_cores: float = 0.0


@dataclass
class HostLoad:
    """Foreign CPU use, and bounded waits until it drops below ``threshold`` cores."""

    threshold: float = 0.25
    budget_seconds: float = 240.0
    sample_seconds: float = 1.0
    own_pids: set[int] = field(default_factory=set)
    waited_seconds: float = 0.0
    available: bool = field(default_factory=lambda: Path("/proc/stat").is_file())

    def wait_for_quiet(self) -> float | None:
        """Sample until other processes use under ``threshold`` cores or the budget is spent.

        Returns the last sample (cores), or None where ``/proc`` is missing.
        """
        if not self.available:
            return None
        while True:
            with self.measure() as sample:
                time.sleep(self.sample_seconds)
            if sample.foreign_cores < self.threshold or self.waited_seconds >= self.budget_seconds:
                return sample.foreign_cores
            self.waited_seconds += sample.seconds

    @contextlib.contextmanager
    def measure(self) -> Iterator[Block]:
        """A ``Block`` filled in when the ``with`` body ends."""
        block = Block()
        began = time.perf_counter()
        busy, own = self._busy_seconds(), self._own_seconds()
        try:
            yield block
        finally:
            block.seconds = time.perf_counter() - began
            if self.available and block.seconds > 0:
                foreign = (self._busy_seconds() - busy) - (self._own_seconds() - own)
                block.foreign_cores = max(foreign, 0.0) / block.seconds

    def _busy_seconds(self) -> float:
        if not self.available:
            return 0.0
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        # Steal is time the hypervisor gave to other guests: also CPU we did not get.
        return (user + nice + system + irq + softirq + steal) / _TICKS

    def _own_seconds(self) -> float:
        # This process (every thread) and the children it has reaped, plus live subprocesses.
        times = os.times()
        total = times.user + times.system + times.children_user + times.children_system
        for pid in list(self.own_pids):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command name may hold spaces; the fields after its ")" are fixed.
                after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(after[11]) + int(after[12])) / _TICKS
        return total
