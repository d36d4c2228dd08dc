"""The loop of `eureka solve`: the only module that knows the order of the stages.

prompt -> LLM (K samples) -> extract -> critic (+ repair) -> sandboxed training in parallel ->
fitness -> selection (best so far) -> reflection -> next prompt ... -> final evaluation.
Everything is written to the run directory as it happens, so a killed run resumes where it
stopped: saved replies are not re-requested and finished candidates are not retrained.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import statistics
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

from pydantic import ValidationError

from eureka import tasks
from eureka.errors import EurekaError, Interrupted
from eureka.feedback import analyzer, reflection
from eureka.feedback import judges as feedback
from eureka.llm import prompts
from eureka.llm.client import LLM, NO_MODEL, BudgetExceeded, LLMError, Message, Usage
from eureka.llm.context import environment_context
from eureka.llm.extract import extract_code
from eureka.reward import critic
from eureka.reward.parametrise import Peak, success_reward
from eureka.runs import rundir
from eureka.runs.totals import Ledger
from eureka.training import groups, optimise
from eureka.training import halving as schedule
from eureka.training.executors import Executor, Watched, make_executor
from eureka.types import (
    CHECK_FILE,
    METRICS_FILE,
    RESPONSE_FILE,
    REWARD_FILE,
    Attempt,
    Candidate,
    CheckReport,
    EvalStats,
    Feedback,
    FinalEvaluation,
    IterationSummary,
    Origin,
    Progress,
    Reporter,
    SolveConfig,
    Status,
    Summary,
    Task,
    Totals,
    TrainingProgress,
    TrainJob,
    TrainResult,
    read_record,
    write_whole,
)

SUMMARY_FILE = "summary.json"
BEST_FILE = "best_reward.py"
ANALYSIS_FILE = "analysis.json"
CHECK_ERROR_FILE = "check_error.log"
SIGNATURE_EXAMPLE = """def compute_reward(field_a: torch.Tensor, field_b: torch.Tensor, action: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ...
    return total, {"component_1": component_1, "component_2": component_2}"""


def place_reward(reward: Path, out: Path) -> Path:
    """`reward` copied into the training folder `out`, as its reward file. A folder that holds
    another reward's training (the best reward changed on a resume) is emptied first, so its
    result is not read back as this reward's."""
    reward_file = out / REWARD_FILE
    if reward_file.is_file() and reward_file.read_text() != reward.read_text():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reward, reward_file)
    return reward_file


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
        self._task_checked = False
        self.task: Task = tasks.load(config.task)
        self.context = environment_context(self.task)
        self.summary = Summary(task=self.task.name, model=llm.model)
        previous = run_dir / SUMMARY_FILE
        if previous.is_file():  # resumed: the budget counts what the run spent before it stopped
            before = read_record(Summary, previous)
            llm.usage = Usage(
                calls=before.llm_calls,
                tokens_in=before.tokens_in,
                tokens_out=before.tokens_out,
                cost=before.cost,
            )
        spent_before = llm.usage.model_copy()
        self.elite: Candidate | None = None
        self.feedback: Feedback | None = None
        self.trained: dict[str, Candidate] = {}
        """Every candidate that trained and reached a fitness, by name (feedback names them)."""
        self.elo: dict[str, float] = {}
        if judge is None and config.feedback == "synthetic":
            judge = feedback.SyntheticOracle(config.oracle_noise, config.seed)
        self.judge = judge
        self.executor = Watched(executor or make_executor(config), run_dir, self._training_progress)
        self.ledger = Ledger(
            run_dir,
            lambda: self.llm.usage.since(spent_before),
            lambda: self.executor.env_steps,
            on_tick=lambda totals: self.report(Progress("totals", totals=totals)),
        )
        self.human_reward = self.task.file(tasks.HUMAN_REWARD_FILE)
        if config.model == NO_MODEL and self.human_reward is None:
            raise EurekaError(
                f"--model none starts from the task's human reward, and task {self.task.name} has none: "
                f"add {tasks.HUMAN_REWARD_FILE} to its folder, or give a --model"
            )
        optimise.check_human_init(config)
        self.proposer = optimise.Proposer(run_dir, config.tuner, config.seed)
        self.proposed: dict[str, optimise.Proposed] = {}
        """Candidates made by the optimiser or a structure operator, by name."""
        self._said_not_sum = False
        """A best reward that is no sum of its components was reported (once a run)."""
        self.budget_spent: BudgetExceeded | None = None
        """The budget refused an LLM call mid-iteration: the iteration ends, then the run."""
        llm.on_wait = lambda text: report(Progress("wait", text))
        if config.halving > 1 and tasks.training_path(self.task, self.config.backend) != "batched":
            raise EurekaError(
                f"--halving continues training from checkpoints, which only the batched path writes; task "
                f"{self.task.name} trains with SB3: add --backend batched (or a training.batched section)"
            )

    def _training_progress(self, progress: TrainingProgress) -> None:
        if progress.status is not None:  # counted before the run can read its results back
            self.ledger.flush()
        self.report(Progress("training", training=progress))

    # ------------------------------------------------------------ prompts

    def _base_messages(self) -> list[Message]:
        system = prompts.render("system", self.task, signature_example=SIGNATURE_EXAMPLE)
        user = prompts.render("task", self.task, context=self.context)
        tips = prompts.render("code_tips", self.task)
        return [{"role": "system", "content": system}, {"role": "user", "content": f"{user}\n\n{tips}"}]

    def _messages(self, failures: list[Candidate]) -> list[Message]:
        """Eureka's prompt: system, task, then the elite's reply and the feedback on it
        (reflection, a human's critique, or a preference), or, when nothing has trained
        yet, a failed reply and its error."""
        messages = self._base_messages()
        if self.elite is not None and self.elite.result is not None:
            fb = self.feedback or Feedback(iteration=-1, mode="auto", elite=self.elite.name)
            worst = self.trained.get(fb.worst or "")
            text = reflection.feedback_prompt(
                fb, self.elite.result, self.task, self.elite.code, worst.code if worst else ""
            )
            messages += self._answer(self.elite.response, text)
        elif failures:
            error = reflection.error_feedback(failures[0].message, self.task)
            messages += self._answer(failures[0].response, error)
        return messages

    def _answer(self, response: str, text: str) -> list[Message]:
        """A reply of the model and what it is told about it (feedback, or an error), with the tips."""
        tips = prompts.render("code_tips", self.task)
        return [{"role": "assistant", "content": response}, {"role": "user", "content": f"{text}\n\n{tips}"}]

    # ------------------------------------------------------------ one candidate

    def _ask(self, files: list[Path], messages: list[Message], purpose: str) -> list[str]:
        """One reply per file: read back where this run already asked (a stopped run never asks
        the LLM twice), else asked for and saved as they arrive."""
        if all(f.is_file() for f in files):
            return [f.read_text() for f in files]
        replies = [c.text for c in self.llm.sample(messages, len(files), purpose=purpose)]
        for f, text in zip(files, replies, strict=True):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        return replies

    def _check(self, folder: Path, where: Path, code: str | None, response: str) -> CheckReport:
        """`_verdict`; an error of eureka's own while checking one candidate (not the user's to
        fix: those are EurekaErrors, and end the run) ends that candidate as crashed, with the
        traceback in `where`/check_error.log, and the run goes on."""
        try:
            return self._verdict(folder, where, code, response)
        except EurekaError:
            raise
        except Exception as exc:
            where.mkdir(parents=True, exist_ok=True)
            log = where / CHECK_ERROR_FILE
            log.write_text(traceback.format_exc())
            message = f"checking it failed: {type(exc).__name__}: {exc}"[:500]
            shown = log.relative_to(self.run_dir) if log.is_relative_to(self.run_dir) else log
            message += f" (traceback in {shown})"
            return CheckReport(status=Status.CRASHED, message=message, stage="static")

    def _verdict(self, folder: Path, where: Path, code: str | None, response: str) -> CheckReport:
        """The critic's verdict on an attempt (in `where`) at the candidate in `folder`. Unless
        the critic model may still revise the code, successive halving trains it in rungs or
        candidates train in groups (`group`), the smoke test's worker goes on to train the
        candidate when it passes (one worker per candidate); `_train_all` then reads that
        training's result back."""
        if code is None:
            message = "the reply contains no Python code block defining compute_reward"
            if not response.strip():
                message = "the model returned an empty reply"
            return CheckReport(status=Status.NO_CODE, message=message, stage="extract")
        train = None
        if self.config.critic != "llm" and self.config.halving <= 1 and not self._grouping:
            train = self._job(folder / REWARD_FILE, folder, self.config.seed)
            saved = where / CHECK_FILE
            if self._saved(folder) is not None and saved.is_file():  # checked and trained before a stop
                return read_record(CheckReport, saved)
        return critic.review(
            code,
            self.task,
            where,
            self.context,
            self.executor.run,
            llm=self.llm if self.config.critic == "llm" else None,
            backend=None if self.config.backend == "auto" else self.config.backend,
            then_train=train,
        )

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

    @staticmethod
    def _saved(out_dir: Path) -> TrainResult | None:
        """The result of the training job that wrote `out_dir`, if it ran."""
        saved = out_dir / METRICS_FILE
        return read_record(TrainResult, saved) if saved.is_file() else None

    def _run(self, job: TrainJob) -> TrainResult:
        """A training job's result: read back when it ran before the run was stopped."""
        return self._saved(job.out_dir) or self.executor.run(job)

    @property
    def _grouping(self) -> bool:
        """Candidates train `group` to a process (after their smoke tests, in their own workers)."""
        return self.config.group > 1 and self.config.halving <= 1

    def _run_all(self, batch: list[TrainJob], trusted: list[bool] | None = None) -> list[TrainResult]:
        """Every job's result (read back where it ran before a stop), `workers` units at a time;
        with `group`, in groups of that many to a process; `trusted` jobs (the task's own
        rewards) share processes in any case (groups.plan_trusted)."""
        saved = [self._saved(job.out_dir) for job in batch]
        todo = [i for i, result in enumerate(saved) if result is None]
        size = self.config.group if self._grouping else 1
        flags = trusted or [False] * len(batch)
        jobs = [batch[i] for i in todo]
        on_cpu = groups.on_a_cpu(self.config.device)
        units = groups.plan_trusted(jobs, [flags[i] for i in todo], size, self.config.workers, on_cpu)
        fresh = iter(groups.run_units(self.executor, jobs, units, self.config.workers))
        return [result if result is not None else next(fresh) for result in saved]

    def _reward_file(self, cand: Candidate) -> Path:
        """The candidate's code as its reward.py, with the critic's smoke-test folders removed."""
        folder = self.run_dir / cand.name
        for k in range(len(cand.attempts)):
            shutil.rmtree(Candidate.attempt_dir(folder, k) / "smoke", ignore_errors=True)
        reward_file = folder / REWARD_FILE
        reward_file.write_text(cand.code)
        return reward_file

    def _train_rung(self, cand: Candidate, rung: int, total: int) -> TrainResult:
        """One rung of successive halving, resuming from the previous rung's checkpoint."""
        folder = self.run_dir / cand.name
        job = self._job(self._reward_file(cand), folder / f"rung_{rung}", self.config.seed, total)
        before = folder / f"rung_{rung - 1}"
        previous = self._saved(before) if rung > 0 else None
        if previous is not None and self._saved(job.out_dir) is None:
            if previous.checkpoint_file is None:
                return previous
            job = job.model_copy(update={"resume_from": before / previous.checkpoint_file})
        return self._run(job)

    def _prepare(
        self,
        iteration: int,
        index: int,
        origin: Origin,
        response: str,
        messages: list[Message],
    ) -> Candidate:
        """Extract and check (with repair rounds); the candidate ends here unless it passed."""
        folder = self.run_dir / f"iter_{iteration}" / f"cand_{index}"
        folder.mkdir(parents=True, exist_ok=True)
        ended = Candidate.load(folder)
        if ended is not None:  # before the run was stopped
            self.report(Progress("candidate", ended.message, ended))
            return ended
        if origin == "llm":
            attempts = [
                Attempt(
                    response=response, check=self._check(folder, folder, extract_code(response), response)
                )
            ]
        else:
            fenced = f"```python\n{response.strip()}\n```"
            attempts = [Attempt(response=fenced, check=self._check(folder, folder, response, response))]
        for k in range(1, 1 + (self.config.repair_rounds if origin == "llm" else 0)):
            last = attempts[-1]
            if last.check.status == Status.OK:
                break
            where = Candidate.attempt_dir(folder, k)
            error = reflection.error_feedback(last.check.message, self.task)
            ask = [*messages, *self._answer(last.response, error)]
            try:
                (reply,) = self._ask([where / RESPONSE_FILE], ask, "repair")
            except BudgetExceeded as exc:  # ends unrepaired; the candidates that passed still train
                self.budget_spent = exc
                break
            attempts.append(
                Attempt(response=reply, check=self._check(folder, where, extract_code(reply), reply))
            )
        verdict = attempts[-1].check
        cand = Candidate(
            iteration=iteration,
            index=index,
            origin=origin,
            status=verdict.status,
            message=verdict.message,
            repaired=len(attempts) > 1 and verdict.status == Status.OK,
            attempts=attempts,
        )
        if cand.status != Status.OK:
            cand.save(folder)
            self.report(Progress("candidate", cand.message, cand))
        return cand

    def _train_all(self, ready: list[Candidate], summary: IterationSummary) -> list[Candidate]:
        """Train every checked candidate: all to the full budget, or by successive halving."""
        for cand in ready:
            self.report(Progress("candidate", "training", cand.model_copy(update={"message": "training"})))
        if self.config.halving > 1 and len(ready) > 1:
            by_name = {c.name: c for c in ready}

            def rung(name: str, r: int, total: int) -> TrainResult:
                return self._train_rung(by_name[name], r, total)

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
            trained = [results[c.name] for c in ready]
        else:
            seed = self.config.seed
            trained = self._run_all(
                [self._job(self._reward_file(c), self.run_dir / c.name, seed) for c in ready]
            )
        done = [cand.after_training(result) for cand, result in zip(ready, trained, strict=True)]
        for cand in done:
            cand.save(self.run_dir / cand.name)
        return done

    # ------------------------------------------------------------ feedback

    def _analysis(self, name: str) -> tuple[str, str]:
        """(rule-based summary, LLM diagnosis) of a trained candidate's rollouts; cached."""
        saved = self.run_dir / name / ANALYSIS_FILE
        if saved.is_file():
            data = json.loads(saved.read_text())
            return data["summary"], data["diagnosis"]
        result = self.trained[name].result
        assert result is not None
        summary = analyzer.analyze(result, self.task)
        diagnosis = ""
        if self.config.analyzer == "llm" and summary:
            try:
                diagnosis = analyzer.diagnose(summary, self.task, self.llm, self.context)
            except BudgetExceeded as exc:
                self.budget_spent = exc
        write_whole(saved, json.dumps({"summary": summary, "diagnosis": diagnosis}))
        return summary, diagnosis

    def _offer(self, cand: Candidate, previous_best: bool = False) -> feedback.Offer:
        video = cand.result.video_file if cand.result else None
        f = "-" if cand.fitness is None else f"{cand.fitness:.4g}"
        summary = f"    task score {f}, success rate {cand.success_rate or 0:.0%}\n" + "\n".join(
            f"    {line}" for line in self._analysis(cand.name)[0].splitlines()
        )
        return feedback.Offer(
            candidate=cand,
            summary=summary,
            video=self.run_dir / cand.name / video if video else None,
            previous_best=previous_best,
        )

    def _judge(self, number: int, fresh: list[Candidate]) -> None:
        """Collect the feedback on iteration `number` and choose the elite from it."""
        path = self.run_dir / f"iter_{number}" / feedback.FEEDBACK_FILE
        best = max(self.trained.values(), key=lambda c: c.fitness or float("-inf")).name
        if path.is_file():  # asked before the run was stopped: never ask again
            fb = read_record(Feedback, path)
        else:
            previous = self.elite.name if self.elite is not None else None
            offered = list(fresh)
            if self.elite is not None and previous not in {c.name for c in fresh}:
                offered.append(self.elite)
            offers = [self._offer(c, previous_best=c.name == previous) for c in offered]
            fb = feedback.collect(self.config.feedback, number, offers, best, self.judge, self._analysis)
            write_whole(path, fb.model_dump_json(indent=2))
        if fb.ranking is not None:
            self.elo = feedback.update_elo(self.elo, fb.ranking)
        self.feedback = fb
        if fb.elite is not None and fb.elite in self.trained:
            self.elite = self.trained[fb.elite]
            (self.run_dir / BEST_FILE).write_text(self.elite.code)

    # ------------------------------------------------------------ iterations

    def _iteration(self, number: int, failures: list[Candidate], repeat: bool) -> list[Candidate]:
        """Run one iteration; return its candidates when every one of them failed."""
        iter_dir = self.run_dir / f"iter_{number}"
        messages = self._messages(failures)
        self.report(
            Progress("iteration", f"iteration {number}" + (" (repeat with errors)" if repeat else ""))
        )
        samples = 0 if self.config.model == NO_MODEL else self.config.samples
        files = [iter_dir / f"cand_{j}" / RESPONSE_FILE for j in range(samples)]
        responses = self._ask(files, messages, "reward") if files else []
        work: list[tuple[int, Origin, str]] = [(j, "llm", r) for j, r in enumerate(responses)]
        if number == 0 and self.config.human_init and self.human_reward is not None:
            work.append((len(work), "human", self.human_reward.read_text()))
        for proposal in self._proposals(number):
            self.proposed[f"iter_{number}/cand_{len(work)}"] = proposal
            work.append((len(work), cast(Origin, proposal.origin), proposal.code))
        summary = IterationSummary(iteration=number, repeat=repeat)
        self.summary.iterations.append(summary)
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            prepared = list(pool.map(lambda w: self._prepare(number, w[0], w[1], w[2], messages), work))
        ready = [c for c in prepared if c.status == Status.OK and c.result is None]
        trained = {c.name: c for c in self._train_all(ready, summary)}
        candidates = [trained.get(c.name, c) for c in prepared]
        self._tell(candidates, summary)
        fresh = []
        for cand in candidates:
            if cand.name in trained:
                self.report(Progress("candidate", cand.message, cand))
            if cand.status == Status.OK and cand.fitness is not None and cand.result is not None:
                self.trained[cand.name] = cand
                fresh.append(cand)
        if fresh:
            self._judge(number, fresh)
        for cand in candidates:
            summary.candidates.append(cand.outcome(self.elo.get(cand.name)))
        best = self.elite
        summary.best_fitness = best.fitness if best else None
        summary.best = best.name if best else None
        self.summary.best = best.outcome(self.elo.get(best.name)) if best else None
        self._save()
        return [] if fresh else candidates

    # ------------------------------------------------------------ proposals without the LLM

    @staticmethod
    def _as_elite(cand: Candidate, peaks_on: bool = False) -> optimise.Elite:
        """What the optimiser needs of a trained candidate; with `peaks_on`, its costs."""
        stats = cand.result.components if cand.result else []
        peaks = (Peak.of(c.name, c.means) for c in stats if peaks_on)
        names = tuple(c.name for c in stats)
        rewards = cand.result.reward_curve if cand.result else []
        curve = [abs(r) for r in rewards if r is not None]
        unit = max((r for r in curve if math.isfinite(r)), default=0.0) or 1.0
        found = tuple(p for p in peaks if p is not None)
        additive = optimise.additive(rewards, stats)
        return optimise.Elite(cand.code, names, cand.fitness or 0.0, found, unit, additive)

    def _proposals(self, number: int) -> list[optimise.Proposed]:
        """The optimiser's trials and the structure operators' recombinations of the elite."""
        if self.elite is None or not (self.config.tune or self.config.structure):
            return []
        elite = self.elite
        others = sorted(
            (c for c in self.trained.values() if c.code.strip() != elite.code.strip()),
            key=lambda c: c.fitness if c.fitness is not None else float("-inf"),
            reverse=True,
        )[:4]
        human = self.human_reward.read_text() if self.human_reward is not None else None
        bonus = self.config.bonus and self.proposer.optimises(self.config.tune)
        success = self._success_reward if bonus else None
        record = self._as_elite(elite, self.config.peaks)
        if not self._said_not_sum and record.components and not self.proposer.is_sum(record):
            self._said_not_sum = True
            self.report(
                Progress(
                    "message",
                    f"{elite.name}: its total is not the sum of its components (a term weighted in the "
                    "total but returned unweighted): its constants are tuned, with no multipliers on the "
                    "components and no recombination (said once a run, of the first such best reward)",
                )
            )
        return self.proposer.propose(
            number,
            record,
            [self._as_elite(c) for c in others],
            human,
            self.config.tune,
            self.config.structure,
            success,
        )

    @functools.cached_property
    def _success_reward(self) -> str | None:
        """`--bonus`: the task's success signal as a reward the optimiser may add to the elite
        (read once a run); where it has none that can be taken out of fitness.py, said and None."""
        fitness = self.task.folder / "fitness.py"
        success = success_reward(fitness.read_text()) if fitness.is_file() else None
        if success is None:
            self.report(
                Progress(
                    "message",
                    f"--bonus: no success bonus for task {self.task.name}: {fitness} has no success_signal "
                    "that reward code can use (one function of plain named state fields, its definitions "
                    "bound once, only torch and math imported)",
                )
            )
        return success

    def _tell(self, candidates: list[Candidate], summary: IterationSummary) -> None:
        """Give the optimiser each of its trials' F (pruned: stopped early by successive halving)."""
        finalists = set(summary.halving.survivors[-1]) if summary.halving else None
        for cand in candidates:
            proposal = self.proposed.get(cand.name)
            if proposal is None:
                continue
            ok = cand.status == Status.OK and cand.fitness is not None
            pruned = finalists is not None and cand.name not in finalists
            self.proposer.tell(proposal, cand.fitness if ok else None, pruned)

    # ------------------------------------------------------------ confirmation on another seed

    @staticmethod
    def _ranking(fitness: float | None, result: TrainResult | None) -> tuple[float, float]:
        """(F, mean F over the training's checkpoints): ties of F (a task whose F saturates, or
        one that is all or nothing) go to the reward that learned sooner."""
        curve = [f for f in (result.fitness_curve if result else []) if f is not None]
        return (
            fitness if fitness is not None else float("-inf"),
            statistics.fmean(curve) if curve else float("-inf"),
        )

    @staticmethod
    def _beats_human(fresh: list[float | None], human: list[float | None]) -> bool:
        """Whether a challenger's F on the confirmation's fresh seeds beats the human reward's
        there: by CONFIRM_MARGIN of the human's |F| on the mean, and on more than half of the
        seeds (a challenger whose training failed on any of them does not; a seed where the human
        reward's failed is a win). Only those seeds are fresh: the challenger's F on the training
        seed is the best of many trainings, so it is high partly by luck."""
        scores = [f for f in fresh if f is not None]
        if not scores or len(scores) < len(fresh):
            return False
        pairs = list(zip(scores, human, strict=True))
        if 2 * sum(h is None or f > h for f, h in pairs) <= len(pairs):
            return False
        known = [(f, h) for f, h in pairs if h is not None]
        if not known:
            return True
        mine, theirs = statistics.fmean(f for f, _ in known), statistics.fmean(h for _, h in known)
        return mine > theirs + optimise.CONFIRM_MARGIN * abs(theirs)

    @classmethod
    def _race_leader(
        cls,
        names: list[str],
        human: str,
        fresh: dict[str, list[float | None]],
        scores: dict[str, tuple[float, float]],
    ) -> str | None:
        """The challenger that races the human reward on the other fresh seeds: of those ahead of
        it on the mean ranking so far (`scores`) that beat it on the first fresh seed by
        CONFIRM_MARGIN, the best by that ranking (None: none did). One that lost the first may not
        race even where more seeds would leave it a majority: tried, on ant_turn such a challenger
        (8.0 against 9.1, then 8.9 and 10.0 against 8.6 and 6.4) won its race and scored 6.9
        against the human reward's 7.3 on the evaluation seeds."""
        ahead = [n for n in names if scores[n] > scores[human]]
        racing = [n for n in ahead if cls._beats_human(fresh[n], fresh[human])]
        return max(racing, key=lambda n: scores[n]) if racing else None

    def _confirm(self) -> None:
        """`confirm`: retrain the elite, the human reward and the next best others by F on a fresh
        seed, `confirm` rewards in all, so a reward that scored well by luck on the training seed
        does not go to the final evaluation. All train on the first fresh seed. Without the human
        reward among them, the two best by mean F so far train on the other fresh seeds and the
        better by mean F over all its seeds goes on. With it, a race: the challengers that beat the
        human reward on the first fresh seed by CONFIRM_MARGIN and on the mean F so far are in it
        (`_race_leader`); the best of them and the human reward train on the other fresh seeds, and
        the challenger replaces the human reward only where it beats it on the fresh seeds' mean
        and on most of them (`_beats_human`). So the confirmation costs `confirm` trainings, plus
        2 x (confirm_seeds - 1) where two go on (a challenger races, or no human reward is among
        them)."""
        assert self.elite is not None
        ranked = sorted(self.trained.values(), key=lambda c: self._ranking(c.fitness, c.result), reverse=True)
        chosen: list[Candidate] = []
        for cand in [self.elite, *[c for c in ranked if c.origin == "human"], *ranked]:
            if len(chosen) < self.config.confirm and all(c.code.strip() != cand.code.strip() for c in chosen):
                chosen.append(cand)
        self.summary.confirmation = {}  # on a resume: made again from the saved trainings
        seeds = [self.config.seed + 1 + k for k in range(self.config.confirm_seeds)]
        human = next((c for c in chosen if c.origin == "human"), None)
        again: dict[str, list[TrainResult]] = {}  # each reward's trainings on the fresh seeds
        fresh: dict[str, list[float | None]] = {}  # their F (None: failed)
        scores: dict[str, tuple[float, float]] = {}  # the mean ranking over all its seeds

        def retrain(cands: list[Candidate], on: list[int]) -> None:
            named = ", ".join(str(s) for s in on)
            self.report(Progress("message", f"confirmation: {len(cands)} rewards retrained on seed {named}"))
            jobs = [
                self._job(self._reward_file(c), self.run_dir / c.name / f"confirm_seed{s}", s)
                for c in cands
                for s in on
            ]
            trusted = [c.origin == "human" for c in cands for _ in on]  # never in a model's reward's process
            results = iter(self._run_all([job.model_copy(update={"video": False}) for job in jobs], trusted))
            for cand in cands:
                mine = again.setdefault(cand.name, [])
                mine.extend(next(results) for _ in on)
                fresh[cand.name] = [r.fitness if r.status == Status.OK else None for r in mine]
                self.summary.confirmation[cand.name] = [cand.fitness, *fresh[cand.name]]
                ranks = [self._ranking(cand.fitness, cand.result)]
                ranks += [self._ranking(f, r) for f, r in zip(fresh[cand.name], mine, strict=True)]
                scores[cand.name] = (
                    statistics.fmean(r[0] for r in ranks),
                    statistics.fmean(r[1] for r in ranks),
                )

        retrain(chosen, seeds[:1])
        best = max(scores, key=lambda name: scores[name])  # the first of equals: the elite
        if human is None and len(seeds) > 1:
            pair = sorted(scores, key=lambda name: scores[name], reverse=True)[:2]  # stable: elite first
            retrain([self.trained[name] for name in pair], seeds[1:])
            best = max(pair, key=lambda name: scores[name])
        elif human is not None:
            others = [c.name for c in chosen if c is not human]
            leader = self._race_leader(others, human.name, fresh, scores)
            if leader is not None and len(seeds) > 1:
                retrain([self.trained[leader], human], seeds[1:])
            if leader is None or not self._beats_human(fresh[leader], fresh[human.name]):
                challenger = leader or next((c.name for c in chosen if c is not human), None)
                if challenger is not None:
                    mine = ", ".join("failed" if f is None else f"{f:.4g}" for f in fresh[challenger])
                    theirs = ", ".join("failed" if f is None else f"{f:.4g}" for f in fresh[human.name])
                    self.report(
                        Progress(
                            "message",
                            f"the human reward goes on: {challenger} scored F {mine} on the fresh seeds, "
                            f"not {optimise.CONFIRM_MARGIN:.0%} above the human reward's {theirs} on the "
                            "mean and on most seeds",
                        )
                    )
                leader = human.name
            best = leader
        self.elite = self.trained[best]
        (self.run_dir / BEST_FILE).write_text(self.elite.code)
        self.summary.best = self.elite.outcome(self.elo.get(best))
        count = 1 + len(fresh[best])
        self.report(
            Progress("message", f"confirmed best: {best} (mean F {scores[best][0]:.4g} over {count} seeds)")
        )
        self._save()

    # ------------------------------------------------------------ final evaluation

    def _evaluate(self) -> FinalEvaluation:
        seeds = [self.config.seed + 1000 + i for i in range(self.config.eval_seeds)]
        assert self.elite is not None
        final_dir = self.run_dir / "final"
        rewards: dict[str, Path | None] = {"best": self.run_dir / BEST_FILE}
        if self.human_reward is not None:  # else no "human" run: a reward file of None is no reward
            rewards["human"] = self.human_reward
        has_sparse = hasattr(tasks.load_module(self.task, "fitness.py"), "success_signal")
        if has_sparse:
            rewards["sparse"] = None
        same = (
            self.human_reward is not None and self.elite.code.strip() == self.human_reward.read_text().strip()
        )
        trained = [name for name in rewards if not (same and name == "best")]  # the same job twice
        runs = [(name, seed) for name in trained for seed in seeds]
        self.report(
            Progress(
                "message",
                f"final evaluation: {len(runs)} trainings ({', '.join(trained)} × {len(seeds)} seeds)"
                + (" (the best reward is the human one)" if same else ""),
            )
        )

        def job(name: str, seed: int) -> TrainJob:
            out = final_dir / f"{name}_seed{seed}"
            reward = rewards[name]
            reward_file = None if reward is None else place_reward(reward, out)
            return self._job(reward_file, out, seed).model_copy(
                update={"video": False, "reference_reward": None}
            )

        trusted = [name != "best" for name, _ in runs]  # the task's own rewards share processes
        results = dict(zip(runs, self._run_all([job(*r) for r in runs], trusted), strict=True))

        def stats(name: str) -> EvalStats:
            mine = [results[("human" if same and name == "best" else name, s)] for s in seeds]
            values = [r.fitness for r in mine]
            clean = [v for v in values if v is not None]
            return EvalStats(
                fitness=values,
                fitness_mean=statistics.fmean(clean) if clean else None,
                fitness_std=statistics.pstdev(clean) if len(clean) > 1 else (0.0 if clean else None),
                success_rate=statistics.fmean([r.success_rate or 0.0 for r in mine]),
                statuses=[r.status.value for r in mine],
            )

        best = stats("best")
        human = stats("human") if "human" in rewards else None
        sparse = stats("sparse") if has_sparse else None
        return FinalEvaluation(
            seeds=seeds,
            timesteps=self._budget(),
            best=best,
            human=human,
            sparse=sparse,
            human_normalized_score=human_normalized_score(
                best.fitness_mean,
                human.fitness_mean if human else None,
                sparse.fitness_mean if sparse else None,
            ),
        )

    # ------------------------------------------------------------ bookkeeping

    def _save(self) -> None:
        self.summary.part, total = self.ledger.flush()
        self.summary.parts = self.ledger.parts
        for key in Totals.model_fields:  # the run's totals, over all its parts
            setattr(self.summary, key, getattr(total, key))
        write_whole(self.run_dir / SUMMARY_FILE, self.summary.model_dump_json(indent=2))

    def stop(self) -> None:
        """Ctrl-C: end the running jobs and LLM calls; run() ends with status `interrupted`."""
        self.executor.cancel()
        self.llm.cancel()

    def run(self) -> Summary:
        rundir.claim(self.run_dir)
        try:
            with self.ledger:
                return self._solve()
        finally:
            rundir.release(self.run_dir)

    def _solve(self) -> Summary:
        counted = 0
        number = 0
        failures: list[Candidate] = []
        failed_in_a_row = 0
        self._save()  # from the start, the run directory says it is a run
        try:
            while counted < self.config.iterations:
                if number > 0 and self.elite is None and self.config.model == NO_MODEL:
                    self.summary.status = "failed"  # the human reward failed: nothing else to try
                    self.summary.message = self._nothing_to_try(failures)
                    break
                failures = self._iteration(number, failures, repeat=bool(failures))
                number += 1
                if self.budget_spent is not None:
                    raise self.budget_spent
                if failures and self.elite is None and (problems := self._task_problems()):
                    self.summary.status = "failed"  # no reward can get past these: no more LLM calls
                    self.summary.message = problems
                    break
                if failures:
                    failed_in_a_row += 1
                    if failed_in_a_row >= self.config.max_failed_iterations and self.elite is None:
                        last = failures[0].message
                        self.summary.status = "failed"
                        self.summary.message = (
                            f"every candidate failed in {failed_in_a_row} "
                            f"iteration{'s' if failed_in_a_row > 1 else ''} in a row; "
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
            if self.elite is None:
                self.summary.message += "; no candidate had trained, so there is no final evaluation"
        except LLMError as exc:  # the provider failed: keep everything computed so far
            self.summary.status = "failed"
            self.summary.message = f"stopped: {exc}"
            self._save()
            raise
        except feedback.FeedbackError as exc:  # no human to answer (the terminal closed): resumable
            self.summary.status = "interrupted"
            self.summary.message = f"stopped: {exc}"
            self._save()
            raise
        except (Interrupted, KeyboardInterrupt):  # Ctrl-C: what ended is saved, the rest resumes
            self.stop()
            self.summary.status = "interrupted"
            self.summary.message = "interrupted by the user"
        if self.elite is not None and self.config.confirm > 0 and self.summary.status in ("ok", "budget"):
            try:
                self._confirm()
            except (Interrupted, KeyboardInterrupt):
                self.stop()
                self.summary.status = "interrupted"
                self.summary.message = "interrupted by the user during the confirmation"
        if self.elite is not None and self.config.eval_seeds > 0 and self.summary.status in ("ok", "budget"):
            try:
                self.summary.final = self._evaluate()
            except (Interrupted, KeyboardInterrupt):
                self.stop()
                self.summary.status = "interrupted"
                self.summary.message = "interrupted by the user during the final evaluation"
        if self.summary.status == "ok":
            best = self.elite
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

    def _task_problems(self) -> str | None:
        """When every candidate so far failed: what `eureka tasks check` finds wrong with the
        task folder (its own code, trusted, checked here once per process), else None."""
        if self._task_checked:
            return None
        self._task_checked = True
        from eureka.training.task_check import check_task

        human = str(self.task.folder / tasks.HUMAN_REWARD_FILE)
        # the human reward's own problems stop only that candidate: others can get past them
        problems = [
            p
            for p in check_task(str(self.task.folder)).problems
            if human not in p and f"missing {tasks.HUMAN_REWARD_FILE}" not in p
        ]
        if not problems:
            return None
        return (
            f"the task folder has {'a problem' if len(problems) == 1 else 'problems'} no reward can "
            f"get past (eureka tasks check {self.task.folder}): " + "; ".join(problems)
        )

    def _nothing_to_try(self, failures: list[Candidate]) -> str:
        """Why a run with no model (only the human reward and the optimiser's proposals from the
        best trained reward) has no candidate left to try."""
        why = f"the human reward failed ({failures[0].message})" if failures else "no reward trained"
        return (
            f"{why}, and with no model (--model none) the optimiser has no trained reward to start "
            f"from; fix the human reward ({self.human_reward}; eureka train {self.task.name} --reward "
            "human shows it) or give a --model"
        )


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
    fix = "the run wrote it when it started: restore it, or start a new run"
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EurekaError(f"{path}: cannot be read ({first}); {fix}") from None
    if not isinstance(raw, dict):
        raise EurekaError(f"{path}: not a mapping of options; {fix}")
    if raw.get("command") not in (None, "solve"):
        raise EurekaError(
            f"{run_dir} is a run of eureka {raw['command']}, not of eureka solve: there is no evolution "
            "to resume; start one with eureka solve TASK"
        )
    try:
        return SolveConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(x) for x in error["loc"])
        raise EurekaError(f"{path}: key '{key}': {error['msg']}; {fix}") from None


def save_config(run_dir: Path, config: SolveConfig) -> None:
    import yaml

    text = yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
    write_whole(run_dir / "config.yaml", text)
