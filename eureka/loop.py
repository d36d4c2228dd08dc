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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eureka import tasks
from eureka.errors import EurekaError
from eureka.feedback import analyzer, reflection
from eureka.feedback import judges as feedback
from eureka.llm import prompts
from eureka.llm.client import LLM, BudgetExceeded, LLMError, Message
from eureka.llm.context import environment_context
from eureka.llm.extract import extract_code
from eureka.reward import critic
from eureka.training import halving as schedule
from eureka.training import tune
from eureka.training.executors import Executor, make_executor
from eureka.types import (
    Candidate,
    EvalStats,
    Feedback,
    FinalEvaluation,
    IterationSummary,
    Progress,
    Reporter,
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
class _Trained:
    """A trained candidate and what later prompts and judges need of it."""

    candidate: Candidate
    response: str
    code: str
    result: TrainResult


@dataclass
class _Prepared:
    """A candidate after extraction and the critic: ready to train, or ended."""

    candidate: Candidate
    response: str
    code: str
    resumed: bool = False
    """It had ended before the run was stopped (read back from its folder)."""


class Loop:
    """One run of `eureka solve` over a run directory."""

    def __init__(
        self,
        config: SolveConfig,
        run_dir: Path,
        llm: LLM,
        report: Reporter,
        judge: feedback.Human | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.llm = llm
        self.report = report
        self.task: Task = tasks.load(config.task)
        self.context = environment_context(self.task)
        self.summary = Summary(task=self.task.name, model=llm.model)
        self.elite: _Trained | None = None
        self.feedback: Feedback | None = None
        self.trained: dict[str, _Trained] = {}
        self.elo: dict[str, float] = {}
        if judge is None and config.feedback == "synthetic":
            judge = feedback.SyntheticOracle(config.oracle_noise, config.seed)
        self.judge = judge
        self.executor: Executor = executor or make_executor(config)
        self.start = time.monotonic()
        self.human_reward = self.task.file(tasks.HUMAN_REWARD_FILE)
        if config.halving > 1 and tasks.training_path(self.task, self.config.backend) != "batched":
            raise EurekaError(
                f"--halving continues training from checkpoints, which only the batched path writes; task "
                f"{self.task.name} trains with SB3: add --backend batched (or a training.batched section)"
            )

    # ------------------------------------------------------------ prompts

    def _base_messages(self) -> list[Message]:
        system = prompts.render("system", self.task, signature_example=SIGNATURE_EXAMPLE)
        user = prompts.render("task", self.task, context=self.context)
        tips = prompts.render("code_tips", self.task)
        return [{"role": "system", "content": system}, {"role": "user", "content": f"{user}\n\n{tips}"}]

    def _messages(self, failures: list[tuple[str, str]]) -> list[Message]:
        """Eureka's prompt: system, task, then the elite's reply and the feedback on it
        (reflection, a human's critique, or a preference), or, when nothing has trained
        yet, a failed reply and its error."""
        messages = self._base_messages()
        tips = prompts.render("code_tips", self.task)
        if self.elite is not None:
            fb = self.feedback or Feedback(iteration=-1, mode="auto", elite=self.elite.candidate.name)
            worst = self.trained.get(fb.worst or "")
            text = reflection.feedback_prompt(
                fb, self.elite.result, self.task, self.elite.code, worst.code if worst else ""
            )
            messages += [
                {"role": "assistant", "content": self.elite.response},
                {"role": "user", "content": f"{text}\n\n{tips}"},
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
            self.executor.run,
            llm=self.llm if self.config.critic == "llm" else None,
            backend=None if self.config.backend == "auto" else self.config.backend,
        )
        return report.status, report.message, report.code

    def _job(
        self, reward_file: Path | None, out_dir: Path, seed: int, timesteps: int | None = None
    ) -> TrainJob:
        return TrainJob(
            task_folder=self.task.folder,
            reward_file=reward_file,
            out_dir=out_dir,
            seed=seed,
            timesteps=timesteps or self.config.timesteps,
            device=self.config.device,
            video=self.config.video,
            threads=self.config.threads,
            sim_threads=self.config.sim_threads,
            reference_reward=self.human_reward,
            backend=None if self.config.backend == "auto" else self.config.backend,
        )

    def _budget(self) -> int:
        return tasks.budget(self.task, self.config.backend, self.config.timesteps)

    def _train(self, cand_dir: Path, code: str) -> TrainResult:
        metrics = cand_dir / "metrics.json"
        if metrics.is_file():  # trained before the run was stopped
            return TrainResult.model_validate_json(metrics.read_text())
        reward_file = cand_dir / "reward.py"
        reward_file.write_text(code)
        shutil.rmtree(cand_dir / "smoke", ignore_errors=True)
        return self.executor.run(self._job(reward_file, cand_dir, self.config.seed))

    def _train_rung(self, cand_dir: Path, code: str, rung: int, total: int) -> TrainResult:
        """One rung of successive halving, resuming from the previous rung's checkpoint."""
        out = cand_dir / f"rung_{rung}"
        metrics = out / "metrics.json"
        if metrics.is_file():
            return TrainResult.model_validate_json(metrics.read_text())
        reward_file = cand_dir / "reward.py"
        reward_file.write_text(code)
        shutil.rmtree(cand_dir / "smoke", ignore_errors=True)
        job = self._job(reward_file, out, self.config.seed, total)
        if rung > 0:
            previous = TrainResult.model_validate_json(
                (cand_dir / f"rung_{rung - 1}" / "metrics.json").read_text()
            )
            if previous.checkpoint_file is None:
                return previous
            job = job.model_copy(
                update={"resume_from": cand_dir / f"rung_{rung - 1}" / previous.checkpoint_file}
            )
        return self.executor.run(job)

    def _prepare(
        self,
        iteration: int,
        index: int,
        origin: Literal["llm", "tune", "human"],
        response: str,
        messages: list[Message],
    ) -> _Prepared:
        """Extract and check (with repair rounds); the candidate ends here unless it passed."""
        cand_dir = self.run_dir / f"iter_{iteration}" / f"cand_{index}"
        cand_dir.mkdir(parents=True, exist_ok=True)
        record = cand_dir / CANDIDATE_FILE
        if record.is_file():  # finished before the run was stopped
            done = Candidate.model_validate_json(record.read_text())
            repair = cand_dir / "repair" / RESPONSE_FILE
            code_file = cand_dir / "reward.py"
            return _Prepared(
                done,
                repair.read_text() if repair.is_file() else response,
                code_file.read_text() if code_file.is_file() else "",
                resumed=True,
            )
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
            self.report(Progress("candidate", message, base))
        return _Prepared(base, response, checked)

    def _finish(self, prepared: _Prepared, result: TrainResult) -> Candidate:
        cand_dir = self.run_dir / prepared.candidate.name
        done = prepared.candidate.model_copy(
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
        (cand_dir / CANDIDATE_FILE).write_text(done.model_dump_json(indent=2))
        return done

    def _train_all(self, ready: list[_Prepared], summary: IterationSummary) -> dict[str, TrainResult]:
        """Train every checked candidate: all to the full budget, or by successive halving."""
        for p in ready:
            self.report(
                Progress("candidate", "training", p.candidate.model_copy(update={"message": "training"}))
            )
        by_name = {p.candidate.name: p for p in ready}
        if self.config.halving > 1 and len(ready) > 1:

            def rung(name: str, r: int, total: int) -> TrainResult:
                return self._train_rung(self.run_dir / name, by_name[name].code, r, total)

            results, report = schedule.successive_halving(
                list(by_name), self._budget(), self.config.halving, rung, self.config.workers
            )
            for name in results:  # the candidate's folder holds its last rung
                last = max(int(d.name[5:]) for d in (self.run_dir / name).glob("rung_*"))
                for item in (self.run_dir / name / f"rung_{last}").iterdir():
                    if item.is_file():
                        shutil.copyfile(item, self.run_dir / name / item.name)
            summary.halving = report
            self.report(
                Progress(
                    "message",
                    f"successive halving: {report.env_steps:,} env steps instead of {report.full_steps:,} "
                    f"({report.saved:.0%} saved)",
                )
            )
            return results
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            trained = list(pool.map(lambda p: self._train(self.run_dir / p.candidate.name, p.code), ready))
        return {p.candidate.name: r for p, r in zip(ready, trained, strict=True)}

    # ------------------------------------------------------------ feedback

    def _analysis(self, name: str) -> tuple[str, str]:
        """(rule-based summary, LLM diagnosis) of a trained candidate's rollouts; cached."""
        cand_dir = self.run_dir / name
        saved = cand_dir / "analysis.json"
        if saved.is_file():
            data = json.loads(saved.read_text())
            return data["summary"], data["diagnosis"]
        trained = self.trained[name]
        summary = analyzer.analyze(trained.result, self.task)
        diagnosis = ""
        if self.config.analyzer == "llm" and summary:
            diagnosis = analyzer.diagnose(summary, self.task, self.llm, self.context)
        saved.write_text(json.dumps({"summary": summary, "diagnosis": diagnosis}))
        return summary, diagnosis

    def _offer(self, name: str, previous_best: bool = False) -> feedback.Offer:
        t = self.trained[name]
        video = self.run_dir / name / t.result.video_file if t.result.video_file else None
        f = "-" if t.result.fitness is None else f"{t.result.fitness:.4g}"
        summary = f"    task score {f}, success rate {t.result.success_rate or 0:.0%}\n" + "\n".join(
            f"    {line}" for line in self._analysis(name)[0].splitlines()
        )
        return feedback.Offer(
            name=name,
            origin=t.candidate.origin,
            fitness=t.result.fitness,
            success_rate=t.result.success_rate,
            video=video,
            code=t.code,
            summary=summary,
            previous_best=previous_best,
        )

    def _judge(self, number: int, fresh: list[str]) -> None:
        """Collect the feedback on iteration `number` and choose the elite from it."""
        path = self.run_dir / f"iter_{number}" / feedback.FEEDBACK_FILE
        best = max(self.trained.values(), key=lambda t: t.result.fitness or float("-inf")).candidate.name
        if path.is_file():  # asked before the run was stopped: never ask again
            fb = Feedback.model_validate_json(path.read_text())
        else:
            names = list(fresh)
            previous = self.elite.candidate.name if self.elite is not None else None
            if previous is not None and previous not in names:
                names.append(previous)
            offers = [self._offer(n, previous_best=n == previous) for n in names]
            fb = feedback.collect(self.config.feedback, number, offers, best, self.judge, self._analysis)
            path.write_text(fb.model_dump_json(indent=2))
        if fb.ranking is not None:
            self.elo = feedback.update_elo(self.elo, fb.ranking)
        self.feedback = fb
        if fb.elite is not None and fb.elite in self.trained:
            self.elite = self.trained[fb.elite]
            (self.run_dir / BEST_FILE).write_text(self.elite.code)

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
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            prepared = list(pool.map(lambda w: self._prepare(number, w[0], w[1], w[2], messages), work))
        ready = [p for p in prepared if not p.resumed and p.candidate.status == Status.OK]
        results = self._train_all(ready, summary)
        outcomes: list[tuple[Candidate, str, TrainResult | None]] = []
        for p in prepared:
            name, cand = p.candidate.name, p.candidate
            result: TrainResult | None = None
            if name in results:
                cand, result = self._finish(p, results[name]), results[name]
                self.report(Progress("candidate", cand.message, cand))
            elif p.resumed:
                metrics = self.run_dir / name / "metrics.json"
                if cand.status == Status.OK and metrics.is_file():
                    result = TrainResult.model_validate_json(metrics.read_text())
                self.report(Progress("candidate", cand.message, cand))
            outcomes.append((cand, p.response, result))
            summary.candidates.append(cand)
        fresh = []
        failed: list[tuple[str, str]] = []
        for (cand, response, result), p in zip(outcomes, prepared, strict=True):
            if result is None or cand.status != Status.OK or cand.fitness is None:
                failed.append((response, cand.message))
                continue
            self.trained[cand.name] = _Trained(cand, response, p.code, result)
            fresh.append(cand.name)
        if fresh:
            self._judge(number, fresh)
        for cand in summary.candidates:
            cand.elo = self.elo.get(cand.name)
        best = self.elite.candidate if self.elite else None
        summary.best_fitness = best.fitness if best else None
        summary.best = best.name if best else None
        self.summary.best = best.model_copy(update={"elo": self.elo.get(best.name)}) if best else None
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
            return self.executor.run(job)

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
            timesteps=self._budget(),
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
        try:
            from eureka.runs.report import write_report

            write_report(self.run_dir)
        except Exception as exc:  # the run's results are saved; a report can be made later
            self.report(
                Progress(
                    "message",
                    f"report not written ({type(exc).__name__}: {exc}); try eureka report {self.run_dir}",
                )
            )
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
