"""The loop of `eureka solve`: the only module that knows the order of the stages.

prompt -> LLM (K samples) -> extract -> critic (+ repair) -> sandboxed training in parallel ->
fitness -> selection (best so far) -> reflection -> next prompt ... -> final evaluation.
Everything is written to the run directory as it happens, so a killed run resumes where it
stopped: saved replies are not re-requested and finished candidates are not retrained.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eureka import critic, jobs, prompts, reflection, tasks, tune
from eureka.context import environment_context
from eureka.errors import EurekaError
from eureka.extract import extract_code
from eureka.llm import LLM, BudgetExceeded, LLMError, Message
from eureka.types import (
    Candidate,
    EvalStats,
    FinalEvaluation,
    IterationSummary,
    SolveConfig,
    Status,
    Summary,
    Task,
    TrainJob,
    TrainResult,
)

SUMMARY_FILE = "summary.json"
BEST_FILE = "best_reward.py"
RESPONSE_FILE = "response.md"
CANDIDATE_FILE = "candidate.json"
SIGNATURE_EXAMPLE = """def compute_reward(field_a: torch.Tensor, field_b: torch.Tensor, action: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ...
    return total, {"component_1": component_1, "component_2": component_2}"""


@dataclass
class Progress:
    """What the display is told: one event at a time."""

    kind: Literal["iteration", "candidate", "message", "final"]
    text: str = ""
    candidate: Candidate | None = None
    summary: Summary | None = None


Reporter = Callable[[Progress], None]


@dataclass
class _Elite:
    """The best candidate so far and what the next prompt needs of it."""

    candidate: Candidate
    response: str
    code: str
    result: TrainResult


class Loop:
    """One run of `eureka solve` over a run directory."""

    def __init__(self, config: SolveConfig, run_dir: Path, llm: LLM, report: Reporter) -> None:
        self.config = config
        self.run_dir = run_dir
        self.llm = llm
        self.report = report
        self.task: Task = tasks.load(config.task)
        self.context = environment_context(self.task)
        self.summary = Summary(task=self.task.name, model=llm.model)
        self.elite: _Elite | None = None
        self.start = time.monotonic()
        human = self.task.file(tasks.HUMAN_REWARD_FILE)
        self.human_reward = human

    # ------------------------------------------------------------ prompts

    def _base_messages(self) -> list[Message]:
        system = prompts.render("system", self.task, signature_example=SIGNATURE_EXAMPLE)
        user = prompts.render("task", self.task, context=self.context)
        tips = prompts.render("code_tips", self.task)
        return [{"role": "system", "content": system}, {"role": "user", "content": f"{user}\n\n{tips}"}]

    def _messages(self, failures: list[tuple[str, str]]) -> list[Message]:
        """Eureka's prompt: system, task, then the best reply and its reflection, or, when
        nothing has trained yet, a failed reply and its error."""
        messages = self._base_messages()
        tips = prompts.render("code_tips", self.task)
        if self.elite is not None:
            feedback = reflection.reflection(self.elite.result, self.task)
            messages += [
                {"role": "assistant", "content": self.elite.response},
                {"role": "user", "content": f"{feedback}\n\n{tips}"},
            ]
        elif failures:
            response, error = failures[0]
            messages += [
                {"role": "assistant", "content": response},
                {"role": "user", "content": f"{reflection.error_feedback(error, self.task)}\n\n{tips}"},
            ]
        return messages

    # ------------------------------------------------------------ one candidate

    def _sample(self, iter_dir: Path, messages: list[Message]) -> list[str]:
        """K replies: read back from the run directory when this iteration already asked."""
        k = self.config.samples
        files = [iter_dir / f"cand_{j}" / RESPONSE_FILE for j in range(k)]
        if all(f.is_file() for f in files):
            return [f.read_text() for f in files]
        replies = [c.text for c in self.llm.sample(messages, k, purpose="reward")]
        for f, text in zip(files, replies, strict=True):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        return replies

    def _repair(self, cand_dir: Path, messages: list[Message], response: str, error: str) -> str:
        """One repair round: the reply and its error go back to the LLM."""
        saved = cand_dir / "repair" / RESPONSE_FILE
        if saved.is_file():
            return saved.read_text()
        tips = prompts.render("code_tips", self.task)
        ask = [
            *messages,
            {"role": "assistant", "content": response},
            {"role": "user", "content": f"{reflection.error_feedback(error, self.task)}\n\n{tips}"},
        ]
        text = self.llm.sample(ask, 1, purpose="repair")[0].text
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(text)
        return text

    def _check(self, cand_dir: Path, code: str | None) -> tuple[Status, str, str]:
        if code is None:
            return Status.NO_CODE, "the reply contains no Python code block defining compute_reward", ""
        report = critic.review(
            code,
            self.task,
            cand_dir,
            self.context,
            llm=self.llm if self.config.critic == "llm" else None,
        )
        return report.status, report.message, report.code

    def _job(self, reward_file: Path | None, out_dir: Path, seed: int) -> TrainJob:
        return TrainJob(
            task_folder=self.task.folder,
            reward_file=reward_file,
            out_dir=out_dir,
            seed=seed,
            timesteps=self.config.timesteps,
            device=self.config.device,
            video=self.config.video,
            reference_reward=self.human_reward,
        )

    def _train(self, cand_dir: Path, code: str) -> TrainResult:
        metrics = cand_dir / "metrics.json"
        if metrics.is_file():  # trained before the run was stopped
            return TrainResult.model_validate_json(metrics.read_text())
        reward_file = cand_dir / "reward.py"
        reward_file.write_text(code)
        shutil.rmtree(cand_dir / "smoke", ignore_errors=True)
        return jobs.run_training(self._job(reward_file, cand_dir, self.config.seed))

    def _candidate(
        self,
        iteration: int,
        index: int,
        origin: Literal["llm", "tune", "human"],
        response: str,
        messages: list[Message],
    ) -> tuple[Candidate, str, TrainResult | None]:
        """Extract, check (with repair rounds), train; always returns a status."""
        cand_dir = self.run_dir / f"iter_{iteration}" / f"cand_{index}"
        cand_dir.mkdir(parents=True, exist_ok=True)
        record = cand_dir / CANDIDATE_FILE
        if record.is_file():  # finished before the run was stopped
            done = Candidate.model_validate_json(record.read_text())
            repair = cand_dir / "repair" / RESPONSE_FILE
            metrics = cand_dir / "metrics.json"
            result = (
                TrainResult.model_validate_json(metrics.read_text()) if done.status == Status.OK else None
            )
            return done, repair.read_text() if repair.is_file() else response, result
        code = extract_code(response) if origin == "llm" else response
        if origin != "llm":
            response = f"```python\n{response.strip()}\n```"
        status, message, checked = self._check(cand_dir, code)
        repaired = False
        for _ in range(self.config.repair_rounds if origin == "llm" else 0):
            if status == Status.OK:
                break
            response = self._repair(cand_dir, messages, response, message)
            status, message, checked = self._check(cand_dir, extract_code(response))
            repaired = status == Status.OK
        base = Candidate(
            iteration=iteration, index=index, origin=origin, status=status, message=message, repaired=repaired
        )
        if status != Status.OK:
            record.write_text(base.model_dump_json(indent=2))
            return base, response, None
        self.report(Progress("candidate", "training", base.model_copy(update={"message": "training"})))
        result = self._train(cand_dir, checked)
        done = base.model_copy(
            update={
                "status": result.status,
                "message": result.message,
                "fitness": result.fitness,
                "success_rate": result.success_rate,
                "solved": result.solved,
                "reward_correlation": result.reward_correlation,
                "env_steps": result.env_steps,
                "wall_time": result.wall_time,
            }
        )
        record.write_text(done.model_dump_json(indent=2))
        return done, response, result

    # ------------------------------------------------------------ iterations

    def _iteration(self, number: int, failures: list[tuple[str, str]], repeat: bool) -> list[tuple[str, str]]:
        """Run one iteration; return (response, error) of its failed candidates."""
        iter_dir = self.run_dir / f"iter_{number}"
        messages = self._messages(failures)
        self.report(
            Progress("iteration", f"iteration {number}" + (" (repeat with errors)" if repeat else ""))
        )
        responses = self._sample(iter_dir, messages)
        work: list[tuple[int, Literal["llm", "tune", "human"], str]] = [
            (j, "llm", r) for j, r in enumerate(responses)
        ]
        if number == 0 and self.config.human_init and self.human_reward is not None:
            work.append((len(work), "human", self.human_reward.read_text()))
        if self.elite is not None:
            rng = random.Random(f"{self.config.seed}-{number}")
            for _ in range(self.config.tune):
                code = tune.perturb(self.elite.code, rng)
                if code is not None:
                    work.append((len(work), "tune", code))
        summary = IterationSummary(iteration=number, repeat=repeat)
        self.summary.iterations.append(summary)
        outcomes: list[tuple[Candidate, str, TrainResult | None]] = []
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            futures = [
                pool.submit(self._candidate, number, j, origin, text, messages) for j, origin, text in work
            ]
            for future in futures:
                cand, response, result = future.result()
                outcomes.append((cand, response, result))
                summary.candidates.append(cand)
                self.report(Progress("candidate", cand.message, cand))
                self._save()
        failed: list[tuple[str, str]] = []
        for cand, response, result in outcomes:
            if result is None or cand.status != Status.OK or cand.fitness is None:
                failed.append((response, cand.message))
                continue
            if self.elite is None or cand.fitness > (self.elite.candidate.fitness or float("-inf")):
                code = (self.run_dir / cand.name / "reward.py").read_text()
                self.elite = _Elite(cand, response, code, result)
                (self.run_dir / BEST_FILE).write_text(code)
        summary.best_fitness = self.elite.candidate.fitness if self.elite else None
        summary.best = self.elite.candidate.name if self.elite else None
        self.summary.best = self.elite.candidate if self.elite else None
        self._save()
        return failed if len(failed) == len(outcomes) else []

    # ------------------------------------------------------------ final evaluation

    def _evaluate(self) -> FinalEvaluation:
        seeds = [self.config.seed + 1000 + i for i in range(self.config.eval_seeds)]
        assert self.elite is not None
        final_dir = self.run_dir / "final"
        rewards: dict[str, Path | None] = {"best": self.run_dir / BEST_FILE, "human": self.human_reward}
        has_sparse = hasattr(tasks.load_module(self.task, "fitness.py"), "success_signal")
        if has_sparse:
            rewards["sparse"] = None
        runs = [(name, seed) for name in rewards for seed in seeds]
        self.report(
            Progress(
                "message",
                f"final evaluation: {len(runs)} trainings ({', '.join(rewards)} × {len(seeds)} seeds)",
            )
        )

        def run(name: str, seed: int) -> TrainResult:
            out = final_dir / f"{name}_seed{seed}"
            metrics = out / "metrics.json"
            if metrics.is_file():
                return TrainResult.model_validate_json(metrics.read_text())
            reward = rewards[name]
            reward_file = None
            if reward is not None:
                out.mkdir(parents=True, exist_ok=True)
                reward_file = out / "reward.py"
                shutil.copyfile(reward, reward_file)
            job = self._job(reward_file, out, seed).model_copy(
                update={"video": False, "reference_reward": None}
            )
            return jobs.run_training(job)

        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            results = dict(zip(runs, pool.map(lambda r: run(*r), runs), strict=True))

        def stats(name: str) -> EvalStats:
            mine = [results[(name, s)] for s in seeds]
            values = [r.fitness for r in mine]
            clean = [v for v in values if v is not None]
            return EvalStats(
                fitness=values,
                fitness_mean=statistics.fmean(clean) if clean else None,
                fitness_std=statistics.pstdev(clean) if len(clean) > 1 else (0.0 if clean else None),
                success_rate=statistics.fmean([r.success_rate or 0.0 for r in mine]),
                statuses=[r.status.value for r in mine],
            )

        best, human = stats("best"), stats("human")
        sparse = stats("sparse") if has_sparse else None
        return FinalEvaluation(
            seeds=seeds,
            timesteps=self.config.timesteps or self.task.spec.training.timesteps,
            best=best,
            human=human,
            sparse=sparse,
            human_normalized_score=human_normalized_score(
                best.fitness_mean, human.fitness_mean, sparse.fitness_mean if sparse else None
            ),
        )

    # ------------------------------------------------------------ bookkeeping

    def _save(self) -> None:
        usage = self.llm.usage
        self.summary.llm_calls = usage.calls
        self.summary.tokens_in = usage.tokens_in
        self.summary.tokens_out = usage.tokens_out
        self.summary.cost = usage.cost
        self.summary.env_steps = sum(c.env_steps for it in self.summary.iterations for c in it.candidates)
        self.summary.wall_time = time.monotonic() - self.start
        tmp = self.run_dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(self.summary.model_dump_json(indent=2))
        tmp.replace(self.run_dir / SUMMARY_FILE)

    def run(self) -> Summary:
        counted = 0
        number = 0
        failures: list[tuple[str, str]] = []
        failed_in_a_row = 0
        try:
            while counted < self.config.iterations:
                failures = self._iteration(number, failures, repeat=bool(failures))
                number += 1
                if failures:
                    failed_in_a_row += 1
                    if failed_in_a_row >= self.config.max_failed_iterations and self.elite is None:
                        last = failures[0][1]
                        self.summary.status = "failed"
                        self.summary.message = (
                            f"every candidate failed in {failed_in_a_row} iterations in a row; "
                            f"last error: {last}"
                        )
                        break
                    if self.elite is None:
                        continue  # repeated with the errors, not counted
                failed_in_a_row = 0
                counted += 1
            else:
                self.summary.status = "ok"
        except BudgetExceeded as exc:
            self.summary.status = "budget"
            self.summary.message = f"stopped: {exc}"
        except LLMError as exc:  # the provider failed: keep everything computed so far
            self.summary.status = "failed"
            self.summary.message = f"stopped: {exc}; resume with --resume {self.run_dir}"
            self._save()
            raise
        if self.elite is not None and self.config.eval_seeds > 0 and self.summary.status != "failed":
            self.summary.final = self._evaluate()
        if self.summary.status == "ok":
            best = self.elite.candidate if self.elite else None
            self.summary.message = f"best reward {best.name} with F {best.fitness:.4g}" if best else "done"
        self._save()
        self.report(Progress("final", self.summary.message, summary=self.summary))
        return self.summary


def human_normalized_score(best: float | None, human: float | None, sparse: float | None) -> float | None:
    """(F_best - F_sparse) / |F_human - F_sparse|; None when undefined."""
    if best is None or human is None or sparse is None or human == sparse:
        return None
    return (best - sparse) / abs(human - sparse)


def load_config(run_dir: Path) -> SolveConfig:
    """The configuration a run was started with (for --resume)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise EurekaError(f"{run_dir} is not a run directory of eureka solve (no config.yaml)")
    return SolveConfig.model_validate(yaml.safe_load(path.read_text()))


def save_config(run_dir: Path, config: SolveConfig) -> None:
    import yaml

    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
    )
