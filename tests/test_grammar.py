"""The embedded model's reward grammar (GBNF): valid for every bundled task, and the replies
written under it are rewards in the contract."""

from __future__ import annotations

import importlib.util

import pytest

from eureka import tasks
from eureka.llm.client import LocalBackend
from eureka.llm.extract import extract_code
from eureka.llm.grammar import ACTION_EFFORT, reward_grammar, signature
from eureka.reward import checks

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(not HAS_LLAMA, reason="needs the 'local' extra")
@pytest.mark.parametrize("name", sorted(tasks.discover()))
def test_the_grammar_of_every_bundled_task_is_valid_gbnf(name: str) -> None:
    import llama_cpp

    task = tasks.load(name)
    grammar = reward_grammar(task)
    llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)  # raises on a malformed grammar
    assert signature(task) in grammar.replace('\\"', '"').replace("\\n", "\n")
    assert f'"{ACTION_EFFORT}"' in grammar


def test_vector_fields_enter_by_norm_and_element() -> None:
    grammar = reward_grammar(tasks.load("point_mass"))
    base = next(line for line in grammar.splitlines() if line.startswith("base ::="))
    assert '"torch.norm(position, dim=-1)"' in base and '"position[:, 1]"' in base
    assert '"goal_distance"' in base and '"position"' not in base  # never a raw [N, 2] tensor


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LLAMA, reason="needs the 'local' extra")
@pytest.mark.parametrize("name", ["pendulum", "point_mass"])
def test_a_constrained_reply_is_always_a_contract_reward(name: str) -> None:
    """One short reply per task (one component, so it stays short on a busy machine)."""
    task = tasks.load(name)
    backend = LocalBackend(seed=0, max_tokens=200, grammar=reward_grammar(task, max_components=1))
    prompt = f"Write a reward function in Python for this task: {task.spec.description}"
    reply = backend.complete([{"role": "user", "content": prompt}], 1, temperature=1.0)[0]
    code = extract_code(reply.text)
    assert code is not None, reply.text
    assert checks.check_source(code, list(task.spec.state)) == [], code
    assert "return total, components" in code
