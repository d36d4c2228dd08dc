"""What a run used over all its parts (a start and each resume): LLM calls, tokens, cost, env
steps, wall time. The LLM's share is read from the transcript (every exchange is appended to it
as it happens, so a killed part's calls count); env steps and wall time from `parts.json`, where
each part rewrites its own entry about once a second."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from eureka.llm.client import TRANSCRIPT_FILE, Usage
from eureka.types import Totals, write_whole

PARTS_FILE = "parts.json"
"""One Totals per part of the run, in order."""
TICK_S = 1.0

_PARTS = TypeAdapter(list[Totals])


class TranscriptUsage:
    """LLM calls, tokens and cost over every exchange of a run's transcript (cached replies
    count as calls, not as tokens or cost, as in the client's own Usage); read incrementally."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / TRANSCRIPT_FILE
        self.usage = Usage()
        self._offset = 0

    def __call__(self) -> Usage:
        if not self.path.is_file():
            return self.usage
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by a kill
                continue
            self.usage.calls += 1
            if not entry.get("cached", False):
                self.usage.tokens_in += int(entry.get("tokens_in", 0))
                self.usage.tokens_out += int(entry.get("tokens_out", 0))
                self.usage.cost += float(entry.get("cost", 0.0))
        return self.usage


class Ledger:
    """This part's entry in parts.json, kept current by a background thread, and the totals."""

    def __init__(
        self,
        run_dir: Path,
        usage: Callable[[], Usage],
        env_steps: Callable[[], int],
        on_tick: Callable[[Totals], None] | None = None,
    ) -> None:
        self.path = run_dir / PARTS_FILE
        self.usage = usage
        self.env_steps = env_steps
        self.on_tick = on_tick
        self.transcript = TranscriptUsage(run_dir)
        self.before: list[Totals] = []
        if self.path.is_file():
            with contextlib.suppress(ValidationError, ValueError):
                self.before = _PARTS.validate_json(self.path.read_text())
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def parts(self) -> int:
        return len(self.before) + 1

    def part(self) -> Totals:
        """What this part has used so far."""
        usage = self.usage()
        return Totals(
            llm_calls=usage.calls,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            cost=usage.cost,
            env_steps=self.env_steps(),
            wall_time=time.monotonic() - self.start,
        )

    def flush(self) -> tuple[Totals, Totals]:
        """(this part, all parts) so far; this part's entry is written."""
        part = self.part()
        with self._lock:
            write_whole(self.path, _PARTS.dump_json([*self.before, part], indent=2).decode())
            llm = self.transcript()
        total = Totals(
            llm_calls=llm.calls,
            tokens_in=llm.tokens_in,
            tokens_out=llm.tokens_out,
            cost=llm.cost,
            env_steps=sum(p.env_steps for p in self.before) + part.env_steps,
            wall_time=sum(p.wall_time for p in self.before) + part.wall_time,
        )
        return part, total

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            with contextlib.suppress(OSError):
                _, total = self.flush()
                if self.on_tick is not None:
                    self.on_tick(total)

    def __enter__(self) -> Ledger:
        self._thread = threading.Thread(target=self._loop, name="eureka-ledger", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
