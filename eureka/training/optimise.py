"""The optimiser of a reward's numbers (BARFI / R*): an Optuna study, used through ask-and-tell,
over a reward family's constants and blend weights (eureka/reward/parametrise.py), scored by F.

Each trial is one candidate the loop trains in the sandbox through its executor, so trials run
in parallel with --workers, on Ray with --executor ray, and under successive halving (a trial
that halving stops early is told as pruned, with its F so far). The studies live in the run
directory (`optimiser.db`, Optuna's SQLite storage), one per family (keyed by its code), so a
resumed run continues the same study: trials asked but never told are handed out again first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import random
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eureka.errors import ConfigError
from eureka.llm.client import LOCAL_MODEL, NO_MODEL
from eureka.reward.compose import ComposeError, Parent, propose
from eureka.reward.parametrise import BONUS, Family, Peak, perturb
from eureka.types import ComponentStats, SolveConfig, write_whole

STUDY_FILE = "optimiser.db"
SAMPLERS = ("tpe", "cmaes", "random")
ADDITIVE_TOLERANCE = 1e-3
"""How far (a share of the magnitudes involved) a checkpoint's mean total may be from the sum of
its components' means for the reward to count as their sum (float32 rounding is far below)."""


def additive(curve: list[float | None], components: list[ComponentStats]) -> bool:
    """Whether a trained reward's total is the sum of its components: in every checkpoint window
    where all are finite (at least one), the mean total per step is the sum of the components'
    means within ADDITIVE_TOLERANCE. Only then does a multiplier on a component (the blend adds
    (m - 1) x the component) or a recombination of components (their sum) mean what it says: a
    reward that returns `w * upright` in its total but `upright` among its components would see
    a multiplier below 1 - w turn the term into a penalty, and a recombination lose `w`."""
    windows = 0
    for k, total in enumerate(curve):
        means = [c.means[k] if k < len(c.means) else None for c in components]
        if total is None or not means or any(m is None for m in means):
            continue
        parts = [m for m in means if m is not None]
        scale = abs(total) + sum(abs(m) for m in parts)
        if abs(total - sum(parts)) > ADDITIVE_TOLERANCE * scale:
            return False
        windows += 1
    return windows > 0


@dataclass(frozen=True)
class Proposal:
    """One trial's point and the reward code it renders to."""

    study: str
    number: int
    values: dict[str, float]
    code: str


@dataclass(frozen=True)
class TrialRecord:
    """A finished or running trial, for the report."""

    study: str
    number: int
    state: str
    fitness: float | None
    values: dict[str, float]


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def _storage(path: Path) -> Any:
    return _optuna().storages.RDBStorage(f"sqlite:///{path}")


FAMILY_VERSION = 5
"""Bumped when a family's parameters change meaning (v2: component weights became log-scale
multipliers; v3: peaks on the costs; v4: the success bonus, and no multiplier for a component
named like a family's own parameter; v5: no multipliers on a reward whose total is not the sum
of its components), so a resumed older run starts a new study instead of
reading old trials wrongly (Optuna refuses a parameter whose scale changed)."""


def family_key(family: Family) -> str:
    peaks = ",".join(f"{p.component}:{p.size}:{p.width}" for p in family.peaks)
    text = "\0".join([family.code, ",".join(family.components), family.human or "", peaks])
    if family.success is not None:  # keys without a bonus stay as they were
        text += f"\0{family.success}\0{family.unit!r}"
    return f"family{FAMILY_VERSION}-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class Optimiser:
    """Ask-and-tell over one family; every answer is stored at once."""

    def __init__(
        self, path: Path, family: Family, sampler: str = "tpe", seed: int = 0, name: str | None = None
    ) -> None:
        """`name`: a stored study's own (one made by an older FAMILY_VERSION keeps its name,
        so the trials it asked before a resume are told to it); by default the family's key."""
        optuna = _optuna()
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        self.family = family
        self.name = name or family_key(family)
        self.distributions = {
            p.name: optuna.distributions.FloatDistribution(p.low, p.high, log=p.log) for p in family.params
        }
        self.study = optuna.create_study(
            storage=_storage(path), study_name=self.name, direction="maximize", load_if_exists=True
        )
        # a resumed study gets a fresh stream of random numbers, not a replay of the first one's
        seed += len(self.study.trials)
        if sampler == "cmaes":
            # centred on the search space: the elite for its constants and component multipliers
            # (log scale around them), but half the human reward's weight (linear on [0, 2]);
            # x0 is deprecated in Optuna 4.9
            self.study.sampler = optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        elif sampler == "random":
            self.study.sampler = optuna.samplers.RandomSampler(seed=seed)
        else:
            self.study.sampler = optuna.samplers.TPESampler(
                seed=seed, multivariate=True, constant_liar=True, n_startup_trials=4
            )
        if "code" not in self.study.user_attrs:
            self.study.set_user_attr("code", family.code)
            self.study.set_user_attr("components", list(family.components))
            self.study.set_user_attr("human", family.human)
            self.study.set_user_attr("peaks", [asdict(p) for p in family.peaks])
            self.study.set_user_attr("success", family.success)
            self.study.set_user_attr("unit", family.unit)

    @classmethod
    def load(cls, path: Path, name: str, sampler: str = "tpe", seed: int = 0) -> Optimiser:
        """The stored study `name`, with the family it was made for."""
        attrs = _optuna().load_study(study_name=name, storage=_storage(path)).user_attrs
        peaks = tuple(Peak(**p) for p in attrs.get("peaks", []))
        family = Family.of(
            attrs["code"],
            tuple(attrs["components"]),
            attrs["human"],
            peaks,
            attrs.get("success"),
            attrs.get("unit", 1.0),
        )
        return cls(path, family, sampler, seed, name)

    def seed_with(self, fitness: float) -> None:
        """Tell the study what the family's start point (the trained elite itself) scored, once."""
        if any(t.user_attrs.get("start") for t in self.study.trials):
            return
        optuna = _optuna()
        trial = optuna.trial.create_trial(
            params=self.family.start,
            distributions=self.distributions,
            value=fitness,
            user_attrs={"start": True},
        )
        self.study.add_trial(trial)

    def ask(self, n: int) -> list[Proposal]:
        """`n` points: trials asked before but never told (a resumed run) first, then new ones."""
        states = (_optuna().trial.TrialState.RUNNING,)
        trials = self.study.get_trials(deepcopy=False, states=states)[:n]
        pending = [(t.number, dict(t.params)) for t in trials]
        while len(pending) < n:
            trial = self.study.ask(self.distributions)
            pending.append((trial.number, dict(trial.params)))
        return [Proposal(self.name, num, values, self.family.render(values)) for num, values in pending]

    def tell(self, number: int, fitness: float | None, pruned: bool = False) -> None:
        """The trial's F (None: it failed); `pruned` when training stopped early at that F."""
        optuna = _optuna()
        state = optuna.trial.TrialState
        trial = self.study.trials[number]
        if trial.state != state.RUNNING:
            return  # told before the run was stopped
        if fitness is None:
            self.study.tell(number, state=state.FAIL)
        elif pruned:
            optuna.Trial(self.study, trial._trial_id).report(fitness, 0)
            self.study.tell(number, state=state.PRUNED)
        else:
            self.study.tell(number, fitness)

    def best(self) -> TrialRecord | None:
        done = [t for t in trials_in(self.study) if t.state == "COMPLETE" and t.fitness is not None]
        return max(done, key=lambda t: t.fitness or 0.0) if done else None


def trials_in(study: Any) -> list[TrialRecord]:
    return [
        TrialRecord(
            study=study.study_name,
            number=t.number,
            state=t.state.name,
            fitness=t.value if t.value is not None else (t.intermediate_values or {}).get(0),
            values=dict(t.params),
        )
        for t in study.get_trials(deepcopy=False)
    ]


def all_trials(path: Path) -> list[TrialRecord]:
    """Every trial of every study in a run's store (empty when the run has none)."""
    if not path.is_file():
        return []
    optuna = _optuna()
    storage = _storage(path)
    out: list[TrialRecord] = []
    for summary in optuna.get_all_study_summaries(storage=storage):
        out += trials_in(optuna.load_study(study_name=summary.study_name, storage=storage))
    return out


# ---------------------------------------------------------------- proposals for the loop

PROPOSALS_FILE = "proposals.json"
TUNERS = ("optuna", "cmaes", "random")


@dataclass(frozen=True)
class Proposed:
    """A candidate made without the LLM: its origin (tune, crossover, drop, add), its code and,
    for the optimiser's, the trial it answers."""

    origin: str
    code: str
    study: str | None = None
    number: int | None = None


@dataclass(frozen=True)
class Elite:
    """What the proposer needs of a trained reward."""

    code: str
    components: tuple[str, ...]
    fitness: float
    peaks: tuple[Peak, ...] = ()
    """Its costs (components <= 0 throughout its training), which its family may add a peak to."""
    unit: float = 1.0
    """Its typical reward per step in training (the largest |mean| over the checkpoints)."""
    additive: bool = True
    """Its total is the sum of its components (`additive`): else its family has no multipliers
    or peaks on them, and the structure operators leave it out."""


class Proposer:
    """Each iteration's proposals from the elite: `tune` trials of the optimiser (or, with the
    `random` tuner, random perturbations of its constants) and `structure` recombinations with
    the other trained rewards. Proposals are saved in the iteration's folder before they are
    returned, so a resumed run gets the same ones; the optimiser's answers go to the study."""

    def __init__(self, run_dir: Path, tuner: str = "optuna", seed: int = 0, sampler: str = "tpe") -> None:
        if tuner not in TUNERS:
            raise ValueError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
        self.run_dir = run_dir
        self.tuner = tuner
        self.seed = seed
        self.sampler = "cmaes" if tuner == "cmaes" else sampler
        self.path = run_dir / STUDY_FILE
        self._lineage: dict[str, str] = {}
        """Code of a proposed reward -> the study it came from (so its study continues)."""
        self._studies: dict[str, Optimiser] = {}

    def optimises(self, tune: int) -> bool:
        """Whether `tune` proposals are the optimiser's trials (which alone take a success bonus),
        not random perturbations or none."""
        return tune > 0 and self.tuner != "random"

    def is_sum(self, elite: Elite) -> bool:
        """Whether the sum of the reward's components stands for it: its training says its total
        is their sum, or it is a trial of a study around such a reward (whose blend weights the
        components in its total, so that total is not their plain sum; a recombination takes
        the components at weight 1, which the optimiser then weights again)."""
        if elite.additive:
            return True
        study = self._study_of(elite.code)
        return study is not None and bool(study.family.components)

    def _study_of(self, code: str) -> Optimiser | None:
        """The study a proposed reward came from, where it is of this FAMILY_VERSION (an older
        one's trials are not continued: its family starts anew)."""
        name = self._lineage.get(code)
        if name is None or not name.startswith(f"family{FAMILY_VERSION}-"):
            return None
        if name not in self._studies:
            self._studies[name] = Optimiser.load(self.path, name, self.sampler, self.seed)
        return self._studies[name]

    def _optimiser(self, elite: Elite, human: str | None, success: str | None = None) -> Optimiser:
        study = self._study_of(elite.code)
        if study is not None:
            return study
        components = elite.components if elite.additive else ()
        if BONUS in elite.components:  # a bonus once, not on a bonused reward (additive or not)
            success = None
        family = Family.of(elite.code, components, human, elite.peaks, success, elite.unit)
        key = family_key(family)
        if key not in self._studies:
            self._studies[key] = Optimiser(self.path, family, self.sampler, self.seed)
        optimiser = self._studies[key]
        optimiser.seed_with(elite.fitness)
        return optimiser

    def propose(
        self,
        iteration: int,
        elite: Elite,
        others: list[Elite],
        human: str | None,
        tune: int,
        structure: int,
        success: str | None = None,
    ) -> list[Proposed]:
        """`success`: the task's success signal as a reward (parametrise.success_reward), which
        the optimiser may add to the elite as a bonus."""
        saved = self.run_dir / f"iter_{iteration}" / PROPOSALS_FILE
        if saved.is_file():
            proposals = [Proposed(**p) for p in json.loads(saved.read_text())]
        else:
            proposals = self._new(iteration, elite, others, human, tune, structure, success)
            saved.parent.mkdir(parents=True, exist_ok=True)
            write_whole(saved, json.dumps([asdict(p) for p in proposals], indent=1))
        for p in proposals:
            if p.study is not None:
                self._lineage.setdefault(p.code, p.study)
        return proposals

    def _new(
        self,
        iteration: int,
        elite: Elite,
        others: list[Elite],
        human: str | None,
        tune: int,
        structure: int,
        success: str | None = None,
    ) -> list[Proposed]:
        rng = random.Random(f"{self.seed}-{iteration}")
        out: list[Proposed] = []
        if self.optimises(tune):
            try:
                optimiser = self._optimiser(elite, human, success)
            except ComposeError:
                optimiser = None
            if optimiser is not None:
                for p in optimiser.ask(tune):
                    out.append(Proposed("tune", p.code, p.study, p.number))
        elif tune:
            for _ in range(tune):
                code = perturb(elite.code, rng)
                if code is not None:
                    out.append(Proposed("tune", code))
        if structure and self.is_sum(elite):
            parents = [Parent(e.code, e.components) for e in [elite, *others] if self.is_sum(e)]
            try:
                made = propose(parents, structure, rng)
            except ComposeError:
                made = []
            out += [Proposed(op, code) for op, code in made]
        return out

    def tell(self, proposed: Proposed, fitness: float | None, pruned: bool = False) -> None:
        """A proposal's outcome (None: it failed the critic or training)."""
        if proposed.study is None or proposed.number is None:
            return
        if proposed.study not in self._studies:
            self._studies[proposed.study] = Optimiser.load(self.path, proposed.study, self.sampler, self.seed)
        self._studies[proposed.study].tell(proposed.number, fitness, pruned)


CONFIRM_MARGIN = 0.1
"""How much better than the human reward (a share of its |F|) a challenger must score on the
confirmation's fresh seeds (their mean) to replace it: the HNS of 1.1 that counts as a gain."""


# ---------------------------------------------------------------- runs without a provider's model

DEFAULT_ITERATIONS = 4
"""Iterations when no LLM writes rewards (or only the embedded one): the first trains the human
reward alone (nothing to tune yet), the other three the optimiser's and the operators' proposals."""
DEFAULT_TUNE = 6
"""Optimiser trials per iteration in that case."""
DEFAULT_STRUCTURE = 1
"""Structure-operator candidates per iteration in that case."""
DEFAULT_BONUS = True
"""The optimiser may add a bonus on the task's success signal in that case (`--bonus`): every
winner of the race over the quality suite carried one (README, "A bonus on the success signal")."""
DEFAULT_CONFIRM = 5
"""Rewards retrained on a fresh seed before the final evaluation in that case: the human reward
and the best four others (the race below then picks among them, not the training seed's luck)."""
DEFAULT_CONFIRM_SEEDS = 3
"""Fresh seeds of that confirmation: a challenger that beat the human reward on the first trains
on two more beside it and must beat it by 10% on the mean and on two of the three (pusher's lucky
best did not: 0.8, then 0.1). So a run costs 1 + 3 x 7 + 5 + 2 x 2 = 31 trainings at most, the
settings of the README's measured table (`bench/optimiser.py --bonus --trainings 32 --iterations 3
--confirm 5 --confirm-seeds 3`)."""
EMBEDDED_SAMPLES = 2
"""Rewards the embedded model proposes per iteration when it is the no-key default (on top of the
31: up to 8 more, those that pass the critic)."""


def check_human_init(config: SolveConfig) -> None:
    """A ConfigError where a run with no LLM would have nothing to start from: the optimiser and
    the structure operators work on trained rewards, and without a model the human reward is
    the only one."""
    if config.model == NO_MODEL and not config.human_init:
        raise ConfigError(
            "with no LLM (--model none, or no key and no embedded model installed) a run starts from "
            "the task's human reward, which --no-human-init leaves out: drop --no-human-init (or "
            "human_init: false in the suite), or give a --model"
        )


def offline_defaults(config: SolveConfig, given: Collection[str]) -> SolveConfig:
    """The settings of a run without a provider's model (`given`: the fields the user set).
    `--model none`: the human reward, the optimiser and the structure operators. No key and no
    --model: the same, with the embedded model as an extra proposer, so the run ends with a
    reward at least as good as the human one (the confirmation keeps the human reward unless
    another beats it on most of three fresh seeds). What the user set stays as set."""
    offline = config.model == NO_MODEL or (config.model == LOCAL_MODEL and "model" not in given)
    if not offline:
        return config
    defaults: dict[str, object] = {
        "human_init": True,
        "iterations": DEFAULT_ITERATIONS,
        "tune": DEFAULT_TUNE,
        "bonus": DEFAULT_BONUS,
        "structure": DEFAULT_STRUCTURE,
        "confirm": DEFAULT_CONFIRM,
        "confirm_seeds": DEFAULT_CONFIRM_SEEDS,
    }
    if config.model == LOCAL_MODEL and importlib.util.find_spec("llama_cpp") is None:
        defaults["model"] = NO_MODEL  # the embedded model is not installed: the run still serves
    elif config.model == LOCAL_MODEL:
        defaults["samples"] = EMBEDDED_SAMPLES
    return config.model_copy(update={k: v for k, v in defaults.items() if k not in given})
