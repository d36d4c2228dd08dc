"""A llama.cpp GBNF grammar for reward replies: every reply the embedded model writes under it is a
fenced `compute_reward` in the reward contract, taking the task's state fields and `action` and
returning `(total, components)`.

The grammar fixes the frame (imports, signature, the components dict, the total as their sum,
the return) and lets the model choose component names, weights and expressions built from the
state fields, numbers and a few bounded torch functions. It is not recursive, so every reply has
a bounded length and ends; division is only by a positive literal.
"""

from __future__ import annotations

import json

from eureka.types import Task

FUNCTIONS = ("torch.abs", "torch.square", "torch.tanh", "torch.cos", "torch.sin")
ACTION_EFFORT = "torch.sum(action.float().reshape(action.shape[0], -1) ** 2, dim=1)"
"""The action's squared magnitude per environment: [N] for discrete and continuous actions alike."""


def _lit(text: str) -> str:
    """A GBNF string literal."""
    return json.dumps(text)


def atoms(task: Task) -> list[str]:
    """Expressions of shape [N] the model may build from: scalar fields as they are, vector fields
    by their norm and their elements, and the action's effort."""
    out: list[str] = []
    for name, field in task.spec.state.items():
        if not field.shape:
            out.append(name)
        elif len(field.shape) == 1 and field.shape[0] <= 8:
            out.append(f"torch.norm({name}, dim=-1)")
            out += [f"{name}[:, {i}]" for i in range(field.shape[0])]
        else:
            out.append(f"torch.norm({name}.flatten(1), dim=-1)")
    out.append(ACTION_EFFORT)
    return out


def signature(task: Task) -> str:
    args = ", ".join(f"{name}: torch.Tensor" for name in [*task.spec.state, "action"])
    return f"def compute_reward({args}) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:\n"


def reward_grammar(task: Task, max_components: int = 4) -> str:
    """The GBNF grammar of a reward reply for `task`."""
    header = "```python\nimport torch\n\n\n" + signature(task) + "    components = {\n"
    footer = "    }\n    total = sum(components.values())\n    return total, components\n```\n"
    optional = " ".join(["entry?"] * (max_components - 1))
    rules = [
        f"root ::= {_lit(header)} entry {optional} {_lit(footer)}",
        'entry ::= "        \\"" name "\\": " expr2 ",\\n"',
        "name ::= [a-z] [a-z_]{1,20}",
        "expr2 ::= sign term2 (op term2){0,2}",
        'term2 ::= (number " * ")? factor2',
        'factor2 ::= atom | func "(" expr1 ")" | "torch.exp(-torch.abs(" expr1 "))" '
        '| "torch.clamp(" expr1 ", min=" sign number ", max=" sign number ")" | "(" expr1 ")"',
        "expr1 ::= sign term1 (op term1){0,2}",
        'term1 ::= (number " * ")? atom',
        'atom ::= base | "(" base " / " positive ")" | base " ** 2"',
        "base ::= " + " | ".join(_lit(a) for a in atoms(task)),
        "func ::= " + " | ".join(_lit(f) for f in FUNCTIONS),
        'op ::= " + " | " - " | " * "',
        'sign ::= "-"?',
        'number ::= [0-9] ("." [0-9]{1,3})?',
        'positive ::= [1-9] ("." [0-9]{1,2})? | "0." [0-9]? [1-9]',
    ]
    return "\n".join(rules) + "\n"
