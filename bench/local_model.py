"""Benchmark: the embedded local model (SmolLM2-135M-Instruct through llama-cpp-python) on a
real task prompt: tokens/s, seconds per sample, how many of N replies pass the Reward Critic,
and what the reply cache saves (prints figures, asserts nothing). With --grammar the replies
are constrained by the task's reward grammar (eureka/llm/grammar.py); without, they are free.

    python bench/local_model.py [--samples 30] [--task cartpole] [--grammar] [--max-tokens 700]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from eureka import tasks
from eureka.llm.client import LLM, Completion, LocalBackend
from eureka.llm.context import environment_context
from eureka.llm.extract import extract_code
from eureka.llm.grammar import reward_grammar
from eureka.llm.prompts import render
from eureka.loop import SIGNATURE_EXAMPLE
from eureka.reward import critic
from eureka.training import jobs
from eureka.types import Status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--task", default="cartpole")
    parser.add_argument("--grammar", action="store_true", help="constrain replies by the reward grammar")
    parser.add_argument("--max-tokens", type=int, default=700)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: cores/2)")
    args = parser.parse_args()
    task = tasks.load(args.task)
    context = environment_context(task)
    messages = [
        {"role": "system", "content": render("system", task, signature_example=SIGNATURE_EXAMPLE)},
        {
            "role": "user",
            "content": f"{render('task', task, context=context)}\n\n{render('code_tips', task)}",
        },
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.monotonic()
        grammar = reward_grammar(task) if args.grammar else None
        backend = LocalBackend(seed=0, max_tokens=args.max_tokens, grammar=grammar, threads=args.threads)
        print(f"model loaded in {time.monotonic() - start:.1f} s")
        replies: list[Completion] = []
        outcomes: Counter[str] = Counter()
        for i in range(args.samples):  # one at a time (seed i), each timed and checked as it comes
            backend.seed = i
            reply = backend.complete(messages, 1, temperature=1.0)[0]
            replies.append(reply)
            code = extract_code(reply.text)
            if code is None:
                outcome = "no_code"
            else:
                report = critic.review(code, task, root / f"cand_{i}", context, jobs.run_training)
                outcome = "passed" if report.status == Status.OK else f"{report.stage}:{report.status.value}"
            outcomes[outcome] += 1
            rate = reply.tokens_out / reply.latency if reply.latency else 0.0
            print(f"reply {i}: {reply.tokens_out} tokens, {rate:.1f} tokens/s: {outcome}", flush=True)
        times = [r.latency for r in replies]
        tokens = [r.tokens_out for r in replies]
        print(
            f"{len(replies)} samples: {statistics.fmean(times):.1f} s per sample (median "
            f"{statistics.median(times):.1f}, max {max(times):.1f}); {sum(tokens) / sum(times):.1f} tokens/s "
            f"generated; {statistics.fmean(tokens):.0f} tokens per reply; prompt {replies[0].tokens_in} tok"
        )
        passed = outcomes["passed"]
        print(f"critic: {passed} of {len(replies)} pass ({passed / len(replies):.0%}); {dict(outcomes)}")
        llm = LLM(backend, cache_dir=root / "cache")
        first = llm.sample(messages, 2)
        start = time.monotonic()
        rerun = LLM(backend, cache_dir=root / "cache")  # the same command run again
        again = rerun.sample(messages, 2)
        same = [r.text for r in again] == [r.text for r in first]
        print(
            f"cache: the same request again took {time.monotonic() - start:.3f} s for {len(again)} replies "
            f"(all cached: {all(r.cached for r in again)}, identical: {same})"
        )


if __name__ == "__main__":
    main()
