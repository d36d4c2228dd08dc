"""The optimiser of a reward's numbers (Optuna, ask-and-tell, stored in the run directory), the
parametrised reward family it searches, and the structure operators (crossover, drop, add)."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from eureka import tasks
from eureka.cli import app
from eureka.llm.context import environment_context
from eureka.reward import compose, parametrise
from eureka.reward.critic import review
from eureka.training import optimise
from eureka.training.jobs import run_training
from eureka.types import Status, Summary, TrainResult

TASK = tasks.load("pendulum")
HUMAN = (REPO / "tasks/pendulum/human_reward.py").read_text()
HUMAN_PARTS = ("angle_cost", "spin_cost", "torque_cost")
runner = CliRunner()
WRITTEN = """import torch
SCALE = 0.5


def closeness(x):
    return torch.exp(-x / SCALE)


def compute_reward(pole_angle: torch.Tensor, angular_velocity: torch.Tensor):
    upright = closeness(pole_angle.abs())
    calm = -0.05 * angular_velocity ** 2
    total = 2.0 * upright + calm
    return total, {"upright": upright, "calm": calm}
"""
"""An LLM-style reward: a module constant, a helper, weights, an exponent that is not tuned."""


def test_family_finds_the_constants_and_renders_its_start_unchanged() -> None:
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    assert [(p.name, p.start, p.low, p.high, p.log) for p in family.params] == [
        ("c0", 0.5, 0.5 / 3, 1.5, True),
        ("c1", 0.05, 0.05 / 3, 0.15000000000000002, True),
        ("c2", 2.0, 2.0 / 3, 6.0, True),
        ("w_upright", 1.0, 1.0 / 3, 3.0, True),
        ("w_calm", 1.0, 1.0 / 3, 3.0, True),
        ("w_human", 0.0, 0.0, 2.0, False),
    ]
    assert family.render(family.start) == parametrise.substitute(WRITTEN, [0.5, 0.05, 2.0])
    assert "** 2" in family.render({"c1": 0.2})  # exponents are not parameters
    assert "0.2 * angular_velocity ** 2" in family.render({"c1": 0.2})
    # the human reward is not blended into itself
    own = parametrise.Family.of(HUMAN, HUMAN_PARTS, human=HUMAN)
    assert [p.name for p in own.params][-1] == "w_torque_cost"


def test_optimiser_proposes_within_bounds_and_resumes_from_its_stored_study(tmp_path: Path) -> None:
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    store = tmp_path / optimise.STUDY_FILE
    first = optimise.Optimiser(store, family, seed=3)
    first.seed_with(0.4)
    proposals = first.ask(6)
    bounds = {p.name: (p.low, p.high) for p in family.params}
    for p in proposals:
        assert set(p.values) == set(bounds)
        assert all(bounds[k][0] <= v <= bounds[k][1] for k, v in p.values.items())
        assert p.code == family.render(p.values)
    for p, f in zip(proposals[:4], [0.1, 0.5, None, 0.3], strict=True):
        first.tell(p.number, f)
    first.tell(proposals[4].number, 0.05, pruned=True)

    # a new process opens the same file: the study goes on where it stopped
    again = optimise.Optimiser.load(store, first.name, seed=3)
    assert again.family.code == WRITTEN and again.family.params == family.params
    pending = again.ask(3)
    assert pending[0].number == proposals[5].number and pending[0].values == proposals[5].values
    assert [p.number for p in pending[1:]] == [7, 8]
    assert pending[1].values != proposals[1].values  # a fresh stream, not a replay of the first
    states = [t.state for t in optimise.all_trials(store)]
    assert states[:6] == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "PRUNED"]
    best = again.best()
    assert best is not None and best.fitness == 0.5 and best.number == proposals[1].number
    again.tell(proposals[1].number, 0.9)  # told before: kept as it was
    assert again.best() == best


def test_cmaes_proposes_within_bounds_around_the_elite(tmp_path: Path) -> None:
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    cma = optimise.Optimiser(tmp_path / optimise.STUDY_FILE, family, sampler="cmaes", seed=0)
    cma.seed_with(0.4)
    bounds = {p.name: (p.low, p.high) for p in family.params}
    for generation in range(2):
        proposals = cma.ask(4)
        for p in proposals:
            assert all(bounds[k][0] <= v <= bounds[k][1] for k, v in p.values.items()), p.values
            cma.tell(p.number, 0.1 * generation + p.values["w_upright"])
    assert len({tuple(p.values.values()) for p in proposals}) == 4  # a population, not one point


def test_proposer_saves_its_proposals_and_reads_them_back(tmp_path: Path) -> None:
    elite = optimise.Elite(WRITTEN, ("upright", "calm"), 0.4)
    other = optimise.Elite(HUMAN, HUMAN_PARTS, 0.3)
    made = optimise.Proposer(tmp_path, seed=1).propose(1, elite, [other], HUMAN, tune=3, structure=3)
    assert [p.origin for p in made] == ["tune", "tune", "tune", "crossover", "drop", "add"]
    saved = json.loads((tmp_path / "iter_1" / optimise.PROPOSALS_FILE).read_text())
    assert [p["code"] for p in saved] == [p.code for p in made]
    resumed = optimise.Proposer(tmp_path, seed=1)
    assert resumed.propose(1, elite, [other], HUMAN, tune=3, structure=3) == made
    resumed.tell(made[0], 0.7)
    # a trial's reward that becomes the elite continues its study
    child = optimise.Elite(made[0].code, ("upright", "calm"), 0.7)
    nxt = resumed.propose(2, child, [elite], HUMAN, tune=2, structure=0)
    assert {p.study for p in nxt} == {made[0].study}
    random_made = optimise.Proposer(tmp_path / "r", tuner="random").propose(1, elite, [], None, 2, 0)
    assert len(random_made) == 2 and all(p.study is None for p in random_made)


def test_structure_operators_yield_code_that_passes_the_critic(tmp_path: Path) -> None:
    a = compose.Parent(WRITTEN, ("upright", "calm"))
    b = compose.Parent(HUMAN, HUMAN_PARTS)
    rng = random.Random(0)
    crossed = compose.crossover(a, b, rng)
    dropped = compose.drop(b, rng)
    added = compose.add(a, b, rng)
    assert crossed and dropped and added
    assert compose.drop(compose.Parent(HUMAN, ("angle_cost",)), rng) is None
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    blended = family.render({"c0": 0.3, "w_upright": 2.0, "w_calm": 0.5, "w_human": 1.5})
    assert "blended + 1 * _as_vector(components['upright']" in blended  # twice the upright term
    assert "blended + -0.5 * _as_vector(components['calm']" in blended
    # one module holding all four, so one smoke test runs every operator's code
    imports, body = [], []
    calls = []
    for i, code in enumerate([crossed, dropped, added, blended]):
        imp, rest = compose.prefixed(code, f"_t{i}_")
        imports += imp
        body += rest
        calls.append(
            f"    t{i}, parts{i} = _t{i}_compute_reward("
            + ", ".join(f"{p}={p}" for p in compose.parameters(code))
            + ")"
        )
    params = compose.union([compose.parameters(c) for c in [crossed, dropped, added, blended]])
    wrapper = "\n".join(
        [
            compose.signature(params),
            *calls,
            "    return t0 + t1 + t2 + t3, {**parts0, **parts1, **parts2, **parts3}",
        ]
    )
    combined = compose.module(imports, body, wrapper)
    context = environment_context(TASK)
    report = review(combined, TASK, tmp_path / "cand", context, run_training, backend="batched")
    assert report.status == Status.OK, report.message


@pytest.mark.parametrize("bad", ["def compute_reward(:\n", "def other(x):\n    return x\n"])
def test_unparseable_parents_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(compose.ComposeError):
        compose.recombine([compose.Parent(bad, ("a",))], [(0, "a")])


MISLED = """import torch


def compute_reward(
    tip_height: torch.Tensor, prev_tip_height: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    time_cost = -torch.ones_like(tip_height)
    climb = 2.0 * (tip_height - prev_tip_height)
    goal = (tip_height > 1.0).float() * 10.0
    rest = -3.0 * tip_height
    total = time_cost + climb + goal + rest
    return total, {"time_cost": time_cost, "climb": climb, "goal": goal, "rest": rest}
"""
"""Acrobot's human reward with a misleading term added: it pays for keeping the tip low."""


@pytest.mark.slow
def test_model_none_improves_on_a_misled_human_reward_on_three_seeds_and_resumes(tmp_path: Path) -> None:
    """End to end with no LLM (`--model none`): from a human reward with one wrong term, an
    optimiser trial and a structure operator train (with seed 2 the drop operator's first pick is
    the wrong term); the confirmation retrains the best and the human reward on a fresh seed and,
    as the best beat it there, on another, and the best beats the human reward by a wide margin on
    all three seeds (the misled reward never swings up: F = -500). The trials are stored; a resumed
    run retrains nothing and asks the study for nothing new."""
    import shutil

    folder = tmp_path / "misled" / "acrobot"
    shutil.copytree(REPO / "tasks/acrobot", folder)
    (folder / "human_reward.py").write_text(MISLED)
    args = ["solve", str(folder), "--model", "none", "--iterations", "2", "--tune", "1", "--structure", "1"]
    args += ["--confirm", "2", "--confirm-seeds", "2", "--seed", "2", "--timesteps", "30000"]
    args += ["--eval-seeds", "0", "--no-video"]
    result = runner.invoke(app, [*args, "--workers", "2", "--backend", "batched"])
    assert result.exit_code == 0, result.output
    (run_dir,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("acrobot/*")
    summary = Summary.model_validate_json((run_dir / "summary.json").read_text())
    assert summary.model == "none" and summary.llm_calls == 0 and summary.status == "ok"
    first, second = summary.iterations
    assert [c.origin for c in first.candidates] == ["human"]
    assert [c.origin for c in second.candidates] == ["tune", "drop"]
    dropped = TrainResult.model_validate_json((run_dir / "iter_1/cand_1/metrics.json").read_text())
    assert [c.name for c in dropped.components] == ["time_cost", "climb", "goal"]  # the wrong term went
    scores = summary.confirmation  # F on the search seed and the confirmation's two fresh seeds
    assert "iter_0/cand_0" in scores and len(scores) == 2  # the human reward and one other
    assert all(len(values) == 3 for values in scores.values()), scores  # it beat it on seed 3: raced on 4

    def mean(values: list[float | None]) -> float:
        return sum(-500.0 if v is None else v for v in values) / len(values)

    # a statistic with margin over three seeds, not one training's threshold
    other = next(name for name in scores if name != "iter_0/cand_0")
    assert mean(scores[other]) > mean(scores["iter_0/cand_0"]) + 100, scores
    assert summary.best is not None and summary.best.name == other  # the best by mean F over both
    trials = optimise.all_trials(run_dir / optimise.STUDY_FILE)
    assert [t.state for t in trials] == ["COMPLETE"] * 2  # the human reward's start, then the trial
    assert trials[0].fitness == first.candidates[0].fitness
    page = (run_dir / "report.html").read_text()
    assert 'id="optimiser"' in page and 'id="confirmation"' in page and "fresh seed 2" in page

    again = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert optimise.all_trials(run_dir / optimise.STUDY_FILE) == trials
    resumed = Summary.model_validate_json((run_dir / "summary.json").read_text())
    assert resumed.confirmation == scores and resumed.env_steps == summary.env_steps


def test_model_none_whose_human_reward_fails_says_so_and_stops(tmp_path: Path) -> None:
    """Nothing else to try: not an iteration with no candidate, ending 'ok' with nothing trained;
    the message names the file to fix. With the human reward left out, there is nothing to start
    from: refused before a run begins."""
    import shutil

    folder = tmp_path / "broken" / "cartpole"
    shutil.copytree(REPO / "tasks/cartpole", folder)
    (folder / "human_reward.py").write_text("def compute_reward(pole_angle):\n    return {}['k'], {}\n")
    args = ["solve", str(folder), "--model", "none", "--iterations", "2", "--timesteps", "1000", "--no-video"]
    result = runner.invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 1, result.output
    (run_dir,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*")
    summary = Summary.model_validate_json((run_dir / "summary.json").read_text())
    assert summary.status == "failed" and len(summary.iterations) == 1
    assert summary.message == (
        "the human reward failed (compute_reward raised KeyError: 'k' "
        "(reward.py line 2: return {}['k'], {})), and with no model (--model none) the optimiser has no "
        f"trained reward to start from; fix the human reward ({folder / 'human_reward.py'}; eureka train "
        "cartpole --reward human shows it) or give a --model"
    )
    runs = list(Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*"))
    refused = runner.invoke(app, ["solve", "cartpole", "--model", "none", "--no-human-init", "--no-video"])
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip() == (
        "error: with no LLM (--model none, or no key and no embedded model installed) a run starts from "
        "the task's human reward, which --no-human-init leaves out: drop --no-human-init (or "
        "human_init: false in the suite), or give a --model"
    )
    assert list(Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*")) == runs  # no run left behind


def test_random_perturbation_scales_each_constant_within_its_spread() -> None:
    code = parametrise.perturb(WRITTEN, random.Random(0), spread=2.0)
    assert code is not None and "** 2" in code
    old = [0.5, 0.05, 2.0]
    new = [float(n) for n in re.findall(r"\d+\.\d+", code)]
    assert len(new) == 3 and all(0.5 <= n / o <= 2.0 for n, o in zip(new, old, strict=True))
    assert parametrise.perturb("def compute_reward(x):\n    return x, {}\n", random.Random(0)) is None


def test_the_confirmation_ranks_by_f_then_by_how_soon_the_reward_learned() -> None:
    from eureka.loop import Loop

    def result(curve: list[float | None]) -> TrainResult:
        return TrainResult(status=Status.OK, fitness=1.0, fitness_curve=curve)

    sooner, later = result([0.0, 1.0, 1.0]), result([0.0, None, 0.0, 1.0])
    assert Loop._ranking(1.0, sooner) > Loop._ranking(1.0, later) > Loop._ranking(0.5, sooner)
    assert Loop._ranking(None, sooner) < Loop._ranking(-500.0, None)  # a failed training ranks last


def test_a_challenger_replaces_the_human_reward_only_with_a_margin_on_the_fresh_seeds() -> None:
    from eureka.loop import Loop
    from eureka.training.optimise import CONFIRM_MARGIN

    def beats(fresh: float | None, human: float | None) -> bool:
        return Loop._beats_human([fresh], [human])

    assert CONFIRM_MARGIN == 0.1
    # one fresh seed: fetch_reach's recorded confirmation, 0.8 against the human reward's 0.75
    assert not beats(0.8, 0.75)
    assert not beats(0.7, 0.7)  # a tie (point_maze's) keeps the human reward
    assert beats(0.9, 0.75)
    assert beats(-300.0, -378.0) and not beats(-350.0, -378.0)  # |F| for negative F
    assert beats(0.01, 0.0) and not beats(0.0, 0.0)
    assert beats(0.5, None) and not beats(None, 0.5)
    # several: the mean by the margin and more than half of the seeds won
    assert Loop._beats_human([0.8, 0.6], [0.7, 0.5])
    assert not Loop._beats_human([0.8, 0.3], [0.7, 0.65])  # pusher's challenger, had a 2nd seed said 0.3
    assert not Loop._beats_human([1.0, 0.45], [0.2, 0.5])  # the mean alone would pass: 1 of 2 seeds won
    assert Loop._beats_human([1.0, 0.45, 0.9], [0.2, 0.5, 0.7])  # 2 of 3 won, mean 0.78 > 1.1 x 0.47
    assert not Loop._beats_human([0.9, None], [0.5, 0.5])  # a failed training: a loss
    # hopper_jump's bonused challenger (156.2, 21.0 against 18.0, 24.7): a 4x mean, one seed won;
    # on the evaluation seeds it scored 25.6, 28.0, 0.0 against the human reward's 122.1, 75.0, 0.0
    assert not Loop._beats_human([156.2, 21.0], [18.0, 24.7])
    assert Loop._beats_human([0.9, 0.6], [None, 0.5])


def test_only_a_challenger_that_beat_the_human_reward_on_the_first_fresh_seed_races() -> None:
    from eureka.loop import Loop

    # ant_turn's elite (12.6 on the training seed, 8.0 against 9.1 on the first fresh seed) is
    # ahead on the mean so far but does not race; one that beat it there by the margin does
    fresh: dict[str, list[float | None]] = {"human": [9.14], "elite": [8.03], "sound": [10.5], "low": [10.2]}
    scores = {"human": (4.89, 0.0), "elite": (10.33, 0.0), "sound": (9.0, 0.0), "low": (4.5, 0.0)}
    assert Loop._race_leader(["elite", "sound", "low"], "human", fresh, scores) == "sound"
    assert Loop._race_leader(["elite", "low"], "human", fresh, scores) is None  # "low": behind on the mean
    assert Loop._race_leader(["elite"], "human", {**fresh, "human": [None]}, scores) == "elite"
    fresh["failed"], scores["failed"] = [None], (20.0, 0.0)
    assert Loop._race_leader(["failed"], "human", fresh, scores) is None
    # and the race is then decided on all fresh seeds, most of them won: fetch_reach's leader,
    # 1.0, 0.05, 0.85 against 0.75, 0.3, 0.3 (its evaluation: 1.0, 1.0, 0.4 against 0.55, 0.7, 0.2)
    assert Loop._beats_human([1.0, 0.05, 0.85], [0.75, 0.3, 0.3])
    # hopper_jump's: 2 of 3 won, but its mean 56.1 is under the human reward's 62.5
    assert not Loop._beats_human([63.1, 60.8, 44.3], [18.0, 24.7, 144.9])


def test_without_the_human_reward_the_two_best_on_the_first_fresh_seed_go_on_to_the_others() -> None:
    """No human reward to race (an LLM's run without human init): all confirmed rewards train on
    the first fresh seed and the best two on the others, so 3 rewards on 3 seeds cost 3 + 2 x 2
    trainings, not 3 x 3, and the best is the better of the two by mean F over all its seeds."""
    model = f"replay:{REPO / 'examples/mountain_car_demo'}"
    args = ["solve", "mountain_car_continuous", "--model", model, "--iterations", "1", "--samples", "3"]
    args += ["--confirm", "3", "--confirm-seeds", "3", "--timesteps", "2000", "--eval-seeds", "0"]
    result = runner.invoke(app, [*args, "--no-video", "--workers", "2"])
    assert result.exit_code == 0, result.output
    (run_dir,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("mountain_car_continuous/*")
    summary = Summary.model_validate_json((run_dir / "summary.json").read_text())
    scores = summary.confirmation  # F on the search seed, then on each fresh seed it trained on
    assert sorted(len(values) for values in scores.values()) == [2, 4, 4], scores
    assert len(list(run_dir.glob("iter_0/cand_*/confirm_seed*"))) == 3 + 2 * 2
    pair = [name for name, values in scores.items() if len(values) == 4]

    def mean(values: list[float | None]) -> float:
        return sum(float("-inf") if v is None else v for v in values) / len(values)

    assert summary.best is not None and summary.best.name in pair
    assert mean(scores[summary.best.name]) == max(mean(scores[n]) for n in pair)
    (out,) = [name for name in scores if name not in pair]
    assert all(mean(scores[out][:2]) <= mean(scores[n][:2]) for n in pair)  # the third by F so far


def test_the_final_evaluation_retrains_a_best_that_changed_on_a_resume(tmp_path: Path) -> None:
    """On a resume whose confirmation picks another best (other confirmation settings), the final
    evaluation's folder of the old best is emptied, not read back as the new best's result."""
    from eureka.loop import place_reward
    from eureka.types import METRICS_FILE

    old, new = tmp_path / "old.py", tmp_path / "new.py"
    old.write_text("def compute_reward(x):\n    return x, {'x': x}\n")
    new.write_text("def compute_reward(x):\n    return -x, {'x': -x}\n")
    out = tmp_path / "final" / "best_seed1000"
    place_reward(old, out)
    (out / METRICS_FILE).write_text("{}")  # the old best's training
    assert place_reward(old, out).read_text() == old.read_text() and (out / METRICS_FILE).is_file()
    assert place_reward(new, out).read_text() == new.read_text()
    assert not (out / METRICS_FILE).exists()  # trains again


def test_a_peak_is_offered_on_costs_only_and_sized_by_their_training_means() -> None:
    peak = parametrise.Peak.of("reach", [-0.4, None, -0.1, float("nan"), -0.05])
    assert peak == parametrise.Peak("reach", size=0.4, width=0.05)  # widest early, last where it ends
    assert parametrise.Peak.of("reach", [-0.4, -0.0]) == parametrise.Peak("reach", size=0.4, width=0.4)
    assert parametrise.Peak.of("turn", [-0.4, 0.2]) is None  # not a cost: it went above 0
    assert parametrise.Peak.of("zero", [0.0, 0.0]) is None and parametrise.Peak.of("none", [None]) is None
    tiny = parametrise.Peak.of("close", [-2.0, -1e-9])
    assert tiny is not None and tiny.width == 0.02  # never narrower than a hundredth of its size


def test_a_family_adds_a_peak_to_a_cost_only_where_the_search_turns_it_on(tmp_path: Path) -> None:
    """Off at the start (the elite's own code), on at a weight: `weight x size x exp(cost / width)`
    added to the total and shown as its own component; the result passes the critic."""
    import torch

    peaks = (parametrise.Peak("calm", size=2.0, width=0.5), parametrise.Peak("elsewhere", 1.0, 1.0))
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN, peaks=peaks)
    assert family.peaks == peaks[:1]  # a peak on a component the reward does not return is dropped
    assert [(p.name, p.start, p.low, p.high, p.log) for p in family.params][-2:] == [
        ("p_calm", 0.0, 0.0, parametrise.PEAK_WEIGHT, False),
        ("s_calm", 0.5, 0.5 / 3, 1.5, True),
    ]
    assert family.render(family.start) == parametrise.substitute(WRITTEN, [0.5, 0.05, 2.0])
    code = family.render({"p_calm": 1.5, "s_calm": 0.25})
    space: dict[str, object] = {}
    exec(compile(code, "peaked", "exec"), space)  # our own rendering, in a test
    angle, speed = torch.tensor([0.1, 1.0]), torch.tensor([0.0, 2.0])
    total, parts = space["compute_reward"](pole_angle=angle, angular_velocity=speed)  # type: ignore[operator]
    calm = -0.05 * speed**2
    expected_peak = 1.5 * 2.0 * torch.exp(calm / 0.25)
    assert torch.allclose(parts["calm_peak"], expected_peak)
    assert torch.allclose(total, 2.0 * torch.exp(-angle.abs() / 0.5) + calm + expected_peak)
    assert set(parts) == {"upright", "calm", "calm_peak"}
    assert "/ 0.25).clamp(max=0.0))" in code  # at most its weight, should the cost turn positive
    report = review(code, TASK, tmp_path / "cand", environment_context(TASK), run_training, backend="batched")
    assert report.status == Status.OK, report.message
    # the peaked reward's own family tunes the peak's numbers as constants and peaks no cost twice
    again = parametrise.Family.of(code, ("upright", "calm", "calm_peak"), peaks=peaks[:1])
    assert "'calm_peak_'" in again.render({"p_calm": 1.0})


def test_two_costs_whose_names_make_one_identifier_get_one_peak_not_two_shared() -> None:
    """`a-b` and `a_b` would both be searched as `p_a_b` and `s_a_b`: the first keeps its peak
    (as `_weighted` keeps its multiplier), and every parameter is named once."""
    import torch

    code = WRITTEN.replace('{"upright": upright, "calm": calm}', '{"a-b": upright, "a_b": calm}')
    peaks = (parametrise.Peak("a-b", size=1.0, width=0.5), parametrise.Peak("a_b", size=2.0, width=0.1))
    family = parametrise.Family.of(code, ("a-b", "a_b"), peaks=peaks)
    names = [p.name for p in family.params]
    assert family.peaks == peaks[:1] and len(names) == len(set(names)), names
    space: dict[str, object] = {}
    exec(compile(family.render({"p_a_b": 1.0, "s_a_b": 0.5}), "peaked", "exec"), space)  # our own
    angle, speed = torch.tensor([0.1, 1.0]), torch.tensor([0.0, 2.0])
    _, parts = space["compute_reward"](pole_angle=angle, angular_velocity=speed)  # type: ignore[operator]
    assert set(parts) == {"a-b", "a_b", "a-b_peak"}


def test_a_study_with_peaks_resumes_with_them(tmp_path: Path) -> None:
    peaks = (parametrise.Peak("calm", size=2.0, width=0.5),)
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN, peaks=peaks)
    store = tmp_path / optimise.STUDY_FILE
    first = optimise.Optimiser(store, family, seed=0)
    assert first.name != optimise.family_key(parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN))
    asked = first.ask(5)
    assert any(p.values["p_calm"] > 0 and "calm_peak" in p.code for p in asked)
    again = optimise.Optimiser.load(store, first.name)
    assert again.family.peaks == peaks and again.family.params == family.params


def test_the_loop_offers_the_optimiser_a_peak_on_each_cost_of_the_elite() -> None:
    from eureka.loop import Loop
    from eureka.types import Candidate, ComponentStats

    stats = [
        ComponentStats(name="upright", means=[0.2, 0.8]),
        ComponentStats(name="calm", means=[-0.3, -0.1]),
        ComponentStats(name="idle", means=[0.0, None]),
    ]
    result = TrainResult(status=Status.OK, fitness=0.5, components=stats)
    cand = Candidate(iteration=1, index=0, origin="tune", status=Status.OK, fitness=0.5, result=result)
    elite = Loop._as_elite(cand, peaks_on=True)
    assert elite.components == ("upright", "calm", "idle")
    assert elite.peaks == (parametrise.Peak("calm", size=0.3, width=0.1),)
    assert Loop._as_elite(cand).peaks == ()  # off unless --peaks


SIGNAL_WITH_HELPERS = """import numpy as np
import torch

LIMIT = 0.3


def near(angle):
    return angle.abs() < LIMIT


def success_signal(pole_angle: torch.Tensor) -> torch.Tensor:
    return near(pole_angle).float()


def episode_fitness(episode) -> float:
    return float(np.sum(episode.signal))
"""
"""A fitness.py whose success signal needs a helper and a constant, beside numpy it does not use."""


def test_the_success_signal_becomes_a_reward_with_only_what_it_uses() -> None:
    """fitness.py's success_signal as a reward in the contract: the helper and constant it uses come
    along, numpy (for episode_fitness, not allowed in reward code) does not; a signal that needs
    numpy, or a fitness.py without one, gives none. Every bundled task's signal converts."""
    import torch

    code = parametrise.success_reward(SIGNAL_WITH_HELPERS)
    assert code is not None and "numpy" not in code and "episode_fitness" not in code
    space: dict[str, object] = {}
    exec(compile(code, "signal", "exec"), space)  # our own rendering, in a test
    total, parts = space["compute_reward"](pole_angle=torch.tensor([0.1, -0.5]))  # type: ignore[operator]
    assert total.tolist() == [1.0, 0.0] and parts["success"].tolist() == [1.0, 0.0]
    needs_numpy = SIGNAL_WITH_HELPERS.replace("near(pole_angle).float()", "torch.tensor(np.abs(pole_angle))")
    assert parametrise.success_reward(needs_numpy) is None
    no_signal = "import torch\n\n\ndef episode_fitness(episode):\n    return 1.0\n"
    assert parametrise.success_reward(no_signal) is None
    assert parametrise.success_reward("def success_signal(:\n") is None
    # what cannot be taken out whole gives none rather than a reward that fails or differs from F
    for change in (
        "LIMIT = 0.3\nLIMIT = LIMIT * 2",  # bound twice
        "LIMIT = 0.3\nLIMIT += 0.1",  # changed
        "LIMIT = 0.3\nif True:\n    LIMIT = 0.5",  # bound inside a block
        "LIMIT = 0.3\nfrom math import *",  # a star import
        "try:\n    from math import pi as LIMIT\nexcept ImportError:\n    pass",  # only inside a block
        "if True:\n    def near(angle):\n        return angle < 0",  # a second helper, in a block
    ):
        assert parametrise.success_reward(SIGNAL_WITH_HELPERS.replace("LIMIT = 0.3", change)) is None, change
    for signature in ("*, pole_angle", "pole_angle=None", "*pole_angle", "pole_angle, /"):
        odd = SIGNAL_WITH_HELPERS.replace(
            "success_signal(pole_angle: torch.Tensor)", f"success_signal({signature})"
        )
        assert parametrise.success_reward(odd) is None, signature
    # a local of the signal that shares a name with a module-level loop's variable is its own
    local = SIGNAL_WITH_HELPERS.replace("LIMIT = 0.3", "LIMIT = 0.3\nfor i in range(2):\n    pass")
    assert parametrise.success_reward(local.replace("near(pole_angle)", "[near(pole_angle) for i in [0]][0]"))
    twice = SIGNAL_WITH_HELPERS + "\n\ndef success_signal(pole_angle):\n    return pole_angle * 0\n"
    assert parametrise.success_reward(twice) is None
    bare = parametrise.success_reward(
        "from torch import where\n\n\ndef success_signal(x):\n    return where(x > 0, 1.0, 0.0)\n"
    )
    assert bare is not None and bare.startswith("import torch\n")  # its signature names torch.Tensor
    for folder in sorted((REPO / "tasks").iterdir()):
        source = (folder / "fitness.py").read_text() if (folder / "fitness.py").is_file() else ""
        if "def success_signal" in source:
            assert parametrise.success_reward(source) is not None, folder.name


def test_a_family_adds_a_success_bonus_only_where_the_search_turns_it_on(tmp_path: Path) -> None:
    """BARFI's primary reward in the blend: off at the start (the elite's own code); at a weight w
    (in units of the elite's reward per step) the total gains w x the success signal, shown as its
    own component; the result passes the critic, and a bonused reward's family adds no second one."""
    import torch

    success = parametrise.success_reward((REPO / "tasks/pendulum/fitness.py").read_text())
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN, success=success, unit=-2.5)
    assert [(p.name, p.start, p.low, p.high, p.log) for p in family.params][-1] == (
        parametrise.BONUS_PARAM,
        0.0,
        0.0,
        parametrise.BONUS_WEIGHT * 2.5,
        False,
    )
    assert family.render(family.start) == parametrise.substitute(WRITTEN, [0.5, 0.05, 2.0])
    code = family.render({parametrise.BONUS_PARAM: 3.0})
    space: dict[str, object] = {}
    exec(compile(code, "bonused", "exec"), space)  # our own rendering, in a test
    angle, speed = torch.tensor([0.1, 1.0]), torch.tensor([0.0, 2.0])
    total, parts = space["compute_reward"](pole_angle=angle, angular_velocity=speed)  # type: ignore[operator]
    base = 2.0 * torch.exp(-angle.abs() / 0.5) - 0.05 * speed**2
    assert torch.allclose(parts[parametrise.BONUS], torch.tensor([3.0, 0.0]))
    assert torch.allclose(total, base + torch.tensor([3.0, 0.0]))
    report = review(code, TASK, tmp_path / "cand", environment_context(TASK), run_training, backend="batched")
    assert report.status == Status.OK, report.message
    again = parametrise.Family.of(code, ("upright", "calm", parametrise.BONUS), success=success)
    assert again.success is None and parametrise.BONUS_PARAM not in again.start
    # a component named `success` (or `human`, `total`) keeps its own multiplier apart from them
    named = parametrise.Family.of(WRITTEN, ("upright", "success", "human"), human=HUMAN, success=success)
    assert [p.name for p in named.params].count("w_success") == 1 and named.start["w_human"] == 0.0
    assert named.render(named.start) == parametrise.substitute(WRITTEN, [0.5, 0.05, 2.0])
    # without a success signal, the family is as before (and so is its study's key)
    plain = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    assert optimise.family_key(parametrise.Family.of(WRITTEN, ("upright", "calm"), HUMAN, success=None)) == (
        optimise.family_key(plain)
    )
    assert optimise.family_key(family) != optimise.family_key(plain)


def test_a_study_with_a_bonus_resumes_with_it(tmp_path: Path) -> None:
    success = parametrise.success_reward((REPO / "tasks/pendulum/fitness.py").read_text())
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), success=success, unit=0.4)
    store = tmp_path / optimise.STUDY_FILE
    first = optimise.Optimiser(store, family, seed=0)
    asked = first.ask(4)
    assert all(0 <= p.values[parametrise.BONUS_PARAM] <= 0.8 for p in asked)
    assert any(p.values[parametrise.BONUS_PARAM] > 0 and parametrise.BONUS in p.code for p in asked)
    again = optimise.Optimiser.load(store, first.name)
    assert again.family.success == success and again.family.unit == 0.4
    assert again.family.params == family.params and again.name == first.name


def test_the_elite_s_unit_is_its_largest_reward_per_step_in_training() -> None:
    from eureka.loop import Loop
    from eureka.types import Candidate

    def elite(curve: list[float | None]) -> optimise.Elite:
        result = TrainResult(status=Status.OK, fitness=0.5, reward_curve=curve)
        cand = Candidate(iteration=1, index=0, origin="tune", status=Status.OK, fitness=0.5, result=result)
        return Loop._as_elite(cand)

    assert elite([-0.5, None, -2.0, 1.5]).unit == 2.0
    assert elite([]).unit == 1.0 and elite([0.0, None]).unit == 1.0 and elite([float("nan")]).unit == 1.0


def test_model_none_with_bonus_trains_rewards_that_pay_the_success_signal(tmp_path: Path) -> None:
    """`--bonus`: the optimiser's trials add a success bonus (its first trials sample the weight
    uniformly, so each has one), which trains and is reported as a component; without the flag
    none does."""
    args = ["solve", "pendulum", "--model", "none", "--iterations", "2", "--tune", "2", "--structure", "0"]
    args += ["--timesteps", "2000", "--eval-seeds", "0", "--no-video", "--backend", "batched"]
    args += ["--confirm", "0"]
    for flag, expected in (("--bonus", True), ("--no-bonus", False)):
        result = runner.invoke(app, [*args, flag])
        assert result.exit_code == 0, result.output
        run_dir = max(Path(os.environ["EUREKA_RUNS_DIR"]).glob("pendulum/*"), key=lambda p: p.stat().st_mtime)
        summary = Summary.model_validate_json((run_dir / "summary.json").read_text())
        tuned = [c for c in summary.iterations[1].candidates if c.origin == "tune"]
        assert len(tuned) == 2 and all(c.status == "ok" for c in tuned), tuned
        for cand in tuned:
            code = (run_dir / cand.name / "reward.py").read_text()
            metrics = TrainResult.model_validate_json((run_dir / cand.name / "metrics.json").read_text())
            assert (parametrise.BONUS in code) is expected
            assert (parametrise.BONUS in [c.name for c in metrics.components]) is expected


def test_a_resumed_run_does_not_continue_a_study_of_an_older_family_version(tmp_path: Path) -> None:
    """A lineage (saved proposals) naming a study of an older FAMILY_VERSION starts a new study
    from the elite: the old one's parameters may mean other things (Optuna refuses a changed scale)."""
    proposer = optimise.Proposer(tmp_path, seed=0)
    elite = optimise.Elite(WRITTEN, ("upright", "calm"), 1.0)
    proposer._lineage[WRITTEN] = "family3-0123456789ab"
    optimiser = proposer._optimiser(elite, HUMAN)
    assert (
        optimiser.name.startswith(f"family{optimise.FAMILY_VERSION}-")
        and optimiser.name != "family3-0123456789ab"
    )


def test_a_resumed_run_tells_a_study_of_an_older_family_version_its_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trials asked by an older eureka (its study named by an older FAMILY_VERSION) and trained
    before a resume are told to that study, not to a new empty one of the same family."""
    family = parametrise.Family.of(WRITTEN, ("upright", "calm"), human=HUMAN)
    store = tmp_path / optimise.STUDY_FILE
    monkeypatch.setattr(optimise, "FAMILY_VERSION", optimise.FAMILY_VERSION - 1)
    asked = optimise.Optimiser(store, family, seed=0).ask(2)
    monkeypatch.undo()
    assert asked[0].study != optimise.family_key(family)
    proposer = optimise.Proposer(tmp_path)
    for fitness, p in zip([0.25, None], asked, strict=True):
        proposer.tell(optimise.Proposed("tune", p.code, p.study, p.number), fitness)
    told = {t.number: t for t in optimise.all_trials(store) if t.study == asked[0].study}
    assert told[asked[0].number].state == "COMPLETE" and told[asked[0].number].fitness == 0.25
    assert told[asked[1].number].state == "FAIL"


def test_a_reward_is_the_sum_of_its_components_only_where_its_training_says_so() -> None:
    """`additive`: in every window with all values finite, the mean total is the components'
    sum (up to rounding, also where large terms cancel); a total that weights a component
    (cartpole's human reward adds 0.5 x upright but returns upright) is not; nothing to
    compare (no components, no finite window) is not."""
    from eureka.types import ComponentStats

    def stats(**means: list[float | None]) -> list[ComponentStats]:
        return [ComponentStats(name=k, means=v) for k, v in means.items()]

    parts = stats(alive=[1.0, 1.0, None], upright=[0.2, 0.9, 0.5])
    assert optimise.additive([1.2, 1.9, 7.0], parts)  # the window with a gap is not compared
    assert not optimise.additive([1.1, 1.45, None], parts)  # alive + 0.5 x upright
    assert optimise.additive([1e-4 * (1 + 1e-5)], stats(up=[100.0], down=[-99.9999]))
    assert not optimise.additive([1.0], [])
    assert not optimise.additive([None, 1.0], stats(a=[0.5, None]))


def test_a_reward_whose_total_weights_its_components_gets_no_multipliers_or_recombination(
    tmp_path: Path,
) -> None:
    """WRITTEN's total is 2 x upright + calm while it returns upright: the blend's (m - 1) x
    upright would not scale upright's weight by m (a term weighted w < 1 turns into a penalty
    for m < 1 - w), and a recombination would drop the 2. Trained and found not additive, its
    family tunes its constants only and no structure operator takes it; a trial of a study
    around an additive reward (whose blend reweights the components, so its training no longer
    shows their sum) still recombines."""
    weighted = optimise.Elite(WRITTEN, ("upright", "calm"), 0.4, additive=False)
    human = optimise.Elite(HUMAN, HUMAN_PARTS, 0.3)
    proposer = optimise.Proposer(tmp_path, seed=1)
    made = proposer.propose(1, weighted, [human], None, tune=3, structure=3)
    assert [p.origin for p in made] == ["tune"] * 3
    (study,) = {p.study for p in made}
    assert study is not None and not any(n.startswith("w_") for n in proposer._studies[study].family.start)
    # the human reward is additive: recombined with others only where they are too
    (tmp_path / "h").mkdir()
    proposer = optimise.Proposer(tmp_path / "h", seed=1)
    made = proposer.propose(1, human, [weighted], None, tune=2, structure=2)
    assert [p.origin for p in made] == ["tune", "tune", "drop", "drop"]
    family = proposer._studies[made[0].study or ""].family
    assert {f"w_{n}" for n in HUMAN_PARTS} <= set(family.start)
    child = optimise.Elite(made[0].code, HUMAN_PARTS, 0.5, additive=False)  # its trial, blended
    nxt = proposer.propose(2, child, [human], None, tune=1, structure=2)
    assert [p.origin for p in nxt][:1] == ["tune"] and {"crossover", "add"} & {p.origin for p in nxt}
    # a reward that already pays a success bonus gets no second one, additive or not
    success = "import torch\n\n\ndef compute_reward(pole_angle):\n    return pole_angle, {}\n"
    for additive in (True, False):
        bonused = optimise.Elite(WRITTEN, ("upright", parametrise.BONUS), 0.4, additive=additive)
        (tmp_path / str(additive)).mkdir()
        proposer = optimise.Proposer(tmp_path / str(additive), seed=1)
        (trial,) = proposer.propose(1, bonused, [], None, tune=1, structure=0, success=success)
        assert parametrise.BONUS_PARAM not in proposer._studies[trial.study or ""].family.start


@pytest.mark.slow
def test_the_loop_finds_from_training_which_human_rewards_are_their_components_sum(tmp_path: Path) -> None:
    """Two real trainings: pendulum's human reward returns its weighted terms (additive),
    cartpole's returns upright and centred before weighting them in its total (not)."""
    from conftest import human_job

    from eureka.loop import Loop
    from eureka.types import Candidate

    for name, expected in (("pendulum", True), ("cartpole", False)):
        job = human_job(REPO / "tasks" / name, tmp_path / name, 2048, "batched")
        result = run_training(job)
        assert result.status == Status.OK, result.message
        cand = Candidate(iteration=0, index=0, origin="human", status=Status.OK, fitness=1.0, result=result)
        assert Loop._as_elite(cand).additive is expected, name


def test_model_none_on_a_reward_that_is_no_sum_of_its_components_tunes_constants_and_says_so() -> None:
    """cartpole's human reward is not the sum of its components: a --model none run tunes its
    constants with no multipliers and no recombination, and says so once."""
    args = ["solve", "cartpole", "--model", "none", "--iterations", "3", "--tune", "1", "--structure", "1"]
    args += ["--confirm", "0", "--timesteps", "2000", "--eval-seeds", "0", "--no-video", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    said = "iter_0/cand_0: its total is not the sum of its components"
    assert " ".join(result.output.split()).count(said) == 1, result.output
    (path,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*/summary.json")
    summary = Summary.model_validate_json(path.read_text())
    assert [[c.origin for c in it.candidates] for it in summary.iterations] == [["human"], ["tune"], ["tune"]]
    (run_dir,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*")
    (study,) = {p["study"] for p in json.loads((run_dir / "iter_1" / optimise.PROPOSALS_FILE).read_text())}
    family = optimise.Optimiser.load(run_dir / optimise.STUDY_FILE, study).family
    assert family.start and not any(name.startswith("w_") for name in family.start)
