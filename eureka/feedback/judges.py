"""Feedback between iterations: who judges the trained candidates and what the next prompt is told.

- `auto`: Eureka's reward reflection plus the Trajectory Analyzer's summary of the elite.
- `critique` (Eureka-HF, Text2Reward): a human watches the best candidate and says what is
  wrong in plain words; the words lead the next prompt, the statistics stay as context.
- `rank` (ICPL): a human ranks the rollout videos of every trained candidate (and the current
  elite); the preferred one becomes the elite, and the next prompt shows the preferred and
  the least preferred reward (ICPL's preference prompt).
- `synthetic`: an oracle ranks by the task's true fitness (optionally with noise), through
  exactly the code path of a human ranking: the mode for CI and for counting queries.

The public entry point is `collect`; humans are reached through the `Human` protocol
(terminal, or the ranking page in rank_page.py), so tests can drive them.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

from pydantic import BaseModel

from eureka.errors import EurekaError
from eureka.types import Candidate, Feedback, Ranking

FEEDBACK_FILE = "feedback.json"
ELO_START = 1000.0
ELO_K = 32.0


class Offer(BaseModel):
    """A trained candidate as a judge sees it: the candidate, a few lines about it, its video."""

    candidate: Candidate
    summary: str
    """A few lines: task score, success rate, the trajectory analysis."""
    video: Path | None = None
    previous_best: bool = False

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def fitness(self) -> float | None:
        return self.candidate.fitness


class FeedbackError(EurekaError):
    """Feedback could not be collected (no terminal, a malformed answer)."""


class Human(Protocol):
    """Where a human's judgement comes from."""

    def critique(self, offer: Offer, iteration: int) -> str: ...

    def rank(self, offers: list[Offer], iteration: int) -> Ranking: ...


# ---------------------------------------------------------------- judges


class TerminalHuman:
    """Asks in the terminal: a critique of the best candidate, or a ranking by numbers."""

    def __init__(
        self,
        write: Callable[[str], None],
        stream: TextIO | None = None,
        open_video: Callable[[Path], None] | None = None,
    ) -> None:
        self.write = write
        self.stream = stream or sys.stdin
        self.open_video = open_video

    def _read(self, prompt: str) -> str:
        self.write(prompt)
        line = self.stream.readline()
        if not line:
            raise FeedbackError("the terminal closed while waiting for feedback")
        return line.rstrip("\n")

    def _show(self, offer: Offer, number: int | None = None) -> None:
        head = f"[{number}] " if number is not None else ""
        tag = " (the best so far)" if offer.previous_best else ""
        self.write(f"{head}{offer.name}{tag}\n{offer.summary}")
        if offer.video is not None:
            self.write(f"    video: {offer.video}")
            if self.open_video is not None:
                self.open_video(offer.video)
        else:
            self.write("    (no video: this task cannot be rendered, or video is off)")

    def critique(self, offer: Offer, iteration: int) -> str:
        self.write(
            f"\nIteration {iteration}: the best candidate so far. Watch its rollout, then say what is wrong."
        )
        self._show(offer)
        lines = []
        while True:
            line = self._read("critique (an empty line ends it; empty keeps the automatic reflection)> ")
            if not line.strip():
                break
            lines.append(line.strip())
        return " ".join(lines)

    def rank(self, offers: list[Offer], iteration: int) -> Ranking:
        self.write(f"\nIteration {iteration}: rank the trained candidates by how well they behave.")
        for i, offer in enumerate(offers, 1):
            self._show(offer, i)
        while True:
            answer = self._read(
                "order from best to worst (e.g. 2 1 3), or just 'best worst' (e.g. 2 3)> "
            ).split()
            try:
                ranking = parse_order(answer, offers)
            except FeedbackError as exc:
                self.write(str(exc))
                continue
            break
        comments = {}
        for name in ranking.order:
            note = self._read(f"comment on {name} (optional)> ").strip()
            if note:
                comments[name] = note
        return ranking.model_copy(update={"comments": comments})


def parse_order(words: list[str], offers: list[Offer]) -> Ranking:
    """A ranking from candidate numbers (1-based): all of them in order, or best and worst."""
    k = len(offers)
    try:
        numbers = [int(w) for w in words]
    except ValueError:
        raise FeedbackError(f"give numbers between 1 and {k}, separated by spaces") from None
    if any(not 1 <= n <= k for n in numbers) or len(set(numbers)) != len(numbers):
        raise FeedbackError(f"give distinct numbers between 1 and {k}")
    names = [offers[n - 1].name for n in numbers]
    if len(numbers) == k:
        return Ranking(order=names, complete=True)
    if len(numbers) == 2 and k > 2:
        best, worst = names
        middle = [o.name for o in offers if o.name not in (best, worst)]
        return Ranking(order=[best, *middle, worst], complete=False)
    raise FeedbackError(f"give all {k} numbers in order, or two: the best and the worst")


class SyntheticOracle:
    """Ranks by true fitness, plus Gaussian noise of `noise` × the spread of F; never critiques."""

    def __init__(self, noise: float = 0.0, seed: int = 0) -> None:
        self.noise = noise
        self.seed = seed

    def critique(self, offer: Offer, iteration: int) -> str:
        return ""

    def rank(self, offers: list[Offer], iteration: int) -> Ranking:
        rng = random.Random(f"{self.seed}-{iteration}")
        values = [o.fitness if o.fitness is not None else float("-inf") for o in offers]
        finite = [v for v in values if v != float("-inf")]
        spread = (max(finite) - min(finite)) if len(finite) > 1 else 1.0
        scored = [v + rng.gauss(0.0, self.noise * (spread or 1.0)) for v in values]
        order = [o.name for _, o in sorted(zip(scored, offers, strict=True), key=lambda p: -p[0])]
        return Ranking(order=order, complete=True, source="synthetic")


# ---------------------------------------------------------------- preference scores


def update_elo(ratings: dict[str, float], ranking: Ranking) -> dict[str, float]:
    """Elo ratings after the pairwise outcomes of `ranking` (new names start at 1000)."""
    out = dict(ratings)
    for name in ranking.order:
        out.setdefault(name, ELO_START)
    for winner, loser in ranking.pairs():
        expected = 1.0 / (1.0 + 10 ** ((out[loser] - out[winner]) / 400.0))
        out[winner] += ELO_K * (1.0 - expected)
        out[loser] -= ELO_K * (1.0 - expected)
    return out


# ---------------------------------------------------------------- the stage


def collect(
    mode: str,
    iteration: int,
    offers: list[Offer],
    best_by_fitness: str | None,
    judge: Human | None,
    analysis: Callable[[str], tuple[str, str]],
) -> Feedback:
    """The feedback on one iteration. `offers` are its trained candidates (plus the elite so
    far, marked `previous_best`); `analysis(name)` gives (summary, diagnosis) of a candidate."""
    if mode in ("critique", "rank", "synthetic") and judge is None:
        raise FeedbackError(f"--feedback {mode} needs a judge")
    if mode in ("auto", "critique"):
        elite = best_by_fitness
        critique = ""
        if mode == "critique" and elite is not None:
            assert judge is not None
            offer = next(o for o in offers if o.name == elite)
            critique = judge.critique(offer, iteration).strip()
        summary, diagnosis = analysis(elite) if elite else ("", "")
        return Feedback(
            iteration=iteration,
            mode=mode,
            elite=elite,
            critique=critique,
            analysis=summary,
            diagnosis=diagnosis,
        )
    assert judge is not None
    if len(offers) < 2:  # nothing to compare: fall back to the best by F
        summary, diagnosis = analysis(best_by_fitness) if best_by_fitness else ("", "")
        return Feedback(
            iteration=iteration, mode=mode, elite=best_by_fitness, analysis=summary, diagnosis=diagnosis
        )
    ranking = judge.rank(offers, iteration)
    known = {o.name for o in offers}
    if set(ranking.order) != known or len(ranking.order) != len(known):
        raise FeedbackError(f"the ranking must order exactly the candidates {sorted(known)}")
    elite, worst = ranking.order[0], ranking.order[-1]
    summary, diagnosis = analysis(elite)
    return Feedback(
        iteration=iteration,
        mode=mode,
        elite=elite,
        worst=worst,
        ranking=ranking,
        analysis=summary,
        diagnosis=diagnosis,
    )
