"""Feedback between iterations: rankings and their pairs, Elo, the terminal and synthetic
judges, the ranking page's answers, and the prompt each feedback mode produces."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from eureka import tasks
from eureka.feedback import judges as feedback
from eureka.feedback import reflection
from eureka.feedback.judges import FeedbackError, Offer, SyntheticOracle, TerminalHuman, collect, parse_order
from eureka.feedback.rank_page import ranking_from_ranks, render_page
from eureka.types import (
    Attempt,
    Candidate,
    CheckReport,
    ComponentStats,
    Feedback,
    Ranking,
    Status,
    TrainResult,
)


def _offers(*fitness: float | None) -> list[Offer]:
    return [
        Offer(
            candidate=Candidate(
                iteration=0,
                index=i,
                status=Status.OK,
                fitness=f,
                success_rate=0.5,
                attempts=[
                    Attempt(
                        response="the reply",
                        check=CheckReport(
                            status=Status.OK,
                            code=f"def compute_reward(pole_angle):  # candidate {i}\n    ...",
                        ),
                    )
                ],
            ),
            summary=f"    task score {f}",
        )
        for i, f in enumerate(fitness)
    ]


def test_a_complete_ranking_states_every_pair_and_a_partial_one_best_and_worst() -> None:
    full = Ranking(order=["a", "b", "c"])
    assert full.pairs() == [("a", "b"), ("a", "c"), ("b", "c")]
    partial = Ranking(order=["a", "b", "c", "d"], complete=False)
    assert partial.pairs() == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]


def test_elo_rewards_the_preferred_and_keeps_the_total() -> None:
    ratings = feedback.update_elo({}, Ranking(order=["a", "b"]))
    assert ratings == {"a": 1016.0, "b": 984.0}
    again = feedback.update_elo(ratings, Ranking(order=["c", "a", "b"]))
    assert again["c"] > 1000 > again["b"]
    assert sum(again.values()) == pytest.approx(3000.0)


def test_terminal_order_accepts_all_numbers_or_best_and_worst() -> None:
    offers = _offers(1.0, 2.0, 3.0)
    assert parse_order(["2", "3", "1"], offers).order == ["iter_0/cand_1", "iter_0/cand_2", "iter_0/cand_0"]
    partial = parse_order(["3", "1"], offers)
    assert partial.order == ["iter_0/cand_2", "iter_0/cand_1", "iter_0/cand_0"] and not partial.complete
    with pytest.raises(FeedbackError, match="give distinct numbers between 1 and 3"):
        parse_order(["1", "1", "2"], offers)
    with pytest.raises(FeedbackError, match="give numbers between 1 and 3"):
        parse_order(["best"], offers)
    with pytest.raises(FeedbackError, match="give all 3 numbers in order, or two"):
        parse_order(["1"], offers)


def test_terminal_human_reads_a_critique_and_a_ranking_with_comments() -> None:
    shown: list[str] = []
    answers = io.StringIO("it wobbles and drifts\nto the left\n\n9 9\n2 1\nsteady\n\n")
    human = TerminalHuman(shown.append, answers)
    offers = _offers(10.0, 20.0)
    assert human.critique(offers[0], 1) == "it wobbles and drifts to the left"
    ranking = human.rank(offers, 1)
    assert ranking.order == ["iter_0/cand_1", "iter_0/cand_0"]
    assert ranking.comments == {"iter_0/cand_1": "steady"}
    assert "give distinct numbers between 1 and 2" in shown  # the bad answer was asked again
    assert any("(no video" in line for line in shown)
    with pytest.raises(FeedbackError, match="the terminal closed"):
        TerminalHuman(shown.append, io.StringIO("")).critique(offers[0], 2)


def test_the_oracle_ranks_by_true_fitness_and_its_noise_is_seeded() -> None:
    offers = _offers(3.0, None, 9.0, 5.0)
    exact = SyntheticOracle().rank(offers, 0)
    assert exact.order == ["iter_0/cand_2", "iter_0/cand_3", "iter_0/cand_0", "iter_0/cand_1"]
    assert exact.source == "synthetic" and exact.complete
    noisy = [SyntheticOracle(noise=5.0, seed=7).rank(offers, i).order for i in range(6)]
    assert noisy == [SyntheticOracle(noise=5.0, seed=7).rank(offers, i).order for i in range(6)]
    assert len({tuple(o) for o in noisy}) > 1  # noise does change the order sometimes


def test_page_answers_become_rankings_or_clear_errors() -> None:
    offers = _offers(1.0, 2.0, 3.0)
    names = [o.name for o in offers]
    full = ranking_from_ranks({names[0]: 2, names[1]: 3, names[2]: 1}, {names[2]: "good"}, offers)
    assert full.order == [names[2], names[0], names[1]] and full.comments == {names[2]: "good"}
    partial = ranking_from_ranks({names[1]: 1, names[0]: 3}, {}, offers)
    assert partial.order == [names[1], names[2], names[0]] and not partial.complete
    with pytest.raises(FeedbackError, match="give every video a different rank from 1 to 3"):
        ranking_from_ranks({names[0]: 1, names[1]: 1, names[2]: 3}, {}, offers)
    with pytest.raises(FeedbackError, match="not on the page"):
        ranking_from_ranks({"iter_9/cand_9": 1}, {}, offers)
    page = render_page(offers, 4)
    assert page.count('<div class="novideo">') == 3 and "Rank the behaviours: iteration 4" in page


def _analysis(name: str) -> tuple[str, str]:
    return f"analysis of {name}", ""


def test_collect_auto_critique_and_ranking() -> None:
    offers = _offers(1.0, 5.0)
    auto = collect("auto", 0, offers, "iter_0/cand_1", None, _analysis)
    assert (
        auto.elite == "iter_0/cand_1"
        and auto.analysis == "analysis of iter_0/cand_1"
        and auto.ranking is None
    )
    human = TerminalHuman(lambda _: None, io.StringIO("too fast\n\n"))
    critique = collect("critique", 0, offers, "iter_0/cand_1", human, _analysis)
    assert critique.critique == "too fast" and critique.elite == "iter_0/cand_1"
    ranked = collect("synthetic", 0, offers, "iter_0/cand_1", SyntheticOracle(), _analysis)
    assert (ranked.elite, ranked.worst) == ("iter_0/cand_1", "iter_0/cand_0")
    with pytest.raises(FeedbackError, match="--feedback rank needs a judge"):
        collect("rank", 0, offers, "iter_0/cand_1", None, _analysis)

    class Liar:
        def critique(self, offer: Offer, iteration: int) -> str:
            return ""

        def rank(self, offers: list[Offer], iteration: int) -> Ranking:
            return Ranking(order=["iter_0/cand_0"])

    with pytest.raises(FeedbackError, match="the ranking must order exactly the candidates"):
        collect("rank", 0, offers, None, Liar(), _analysis)


def _result() -> TrainResult:
    return TrainResult(
        status="ok",
        fitness=400.0,
        success_rate=0.5,
        checkpoint_steps=[10, 20],
        fitness_curve=[100.0, 400.0],
        episode_length_curve=[100.0, 400.0],
        components=[ComponentStats(name="upright", means=[0.5, 0.9])],
    )


def test_each_feedback_mode_makes_its_prompt() -> None:
    task = tasks.load("cartpole")
    result = _result()
    critique = Feedback(iteration=0, mode="critique", elite="a", critique="it drifts", analysis="ended early")
    text = reflection.feedback_prompt(critique, result, task, "GOOD", "BAD")
    assert text.startswith('A human watched the policy trained with the reward above and said:\n"it drifts"')
    assert (
        "upright: [0.50, 0.90]" in text
        and "Trajectory analysis of the evaluation rollouts:\nended early" in text
    )
    ranking = Ranking(order=["a", "c", "b"], comments={"a": "smooth", "b": "falls"})
    pref = Feedback(iteration=0, mode="rank", elite="a", worst="b", ranking=ranking)
    text = reflection.feedback_prompt(pref, result, task, "GOOD", "BAD")
    assert "liked best was trained with:\n```python\nGOOD\n```" in text
    assert "liked least was trained with:\n```python\nBAD\n```" in text
    assert "Their comments: on the preferred one: smooth; on the least preferred one: falls" in text
    assert "The preferred reward's training statistics:\nWe trained a policy" in text
    auto = Feedback(iteration=0, mode="auto", elite="a")
    assert reflection.feedback_prompt(auto, result, task, "GOOD", "BAD") == reflection.reflection(
        result, task
    )
    empty = Feedback(iteration=0, mode="critique", elite="a", critique="")  # nothing said: the reflection
    assert reflection.feedback_prompt(empty, result, task, "", "") == reflection.reflection(result, task)


def test_offer_paths_are_optional(tmp_path: Path) -> None:
    offer = _offers(1.0)[0].model_copy(update={"video": tmp_path / "v.mp4"})
    shown: list[str] = []
    opened: list[Path] = []
    TerminalHuman(shown.append, io.StringIO("\n"), open_video=opened.append).critique(offer, 0)
    assert opened == [tmp_path / "v.mp4"] and f"    video: {tmp_path / 'v.mp4'}" in shown
