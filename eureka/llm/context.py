"""The environment context the LLM sees (Text2Reward style): a typed stub of the state fields,
the action, how episodes end, and what the task score measures."""

from __future__ import annotations

from eureka.types import StateField, Task


def _shape(field: StateField) -> str:
    return "[N]" if not field.shape else "[N, " + ", ".join(str(d) for d in field.shape) + "]"


def _field_line(name: str, field: StateField) -> str:
    unit = f" ({field.unit})" if field.unit else ""
    return f"    {name}: torch.Tensor  # {_shape(field)}{unit} {field.description}"


def environment_context(task: Task) -> str:
    """Everything the LLM is told about the task's environment, as plain text."""
    spec = task.spec
    lines = [
        f"Task: {spec.name}",
        spec.description.strip(),
        "",
        "The reward function is called once per step for a batch of N environments. Its",
        "parameters are bound by name to these state fields, each a torch.Tensor whose first",
        "dimension is the batch (values after the step):",
        "",
        "class State:",
        *(_field_line(name, field) for name, field in spec.state.items()),
        f"    action: torch.Tensor  # the action taken this step. {spec.action.strip()}",
        "",
        "Any field is also available as prev_<field>, its value before the step",
        f"(for example prev_{next(iter(spec.state))}).",
        "",
        f"Episode end: {spec.termination.strip()}",
        "",
        f"Task score: {spec.fitness.description.strip()} (higher is better"
        + (
            ""
            if spec.fitness.threshold is None
            else f"; the task counts as solved at {spec.fitness.threshold:g}"
        )
        + ").",
    ]
    return "\n".join(lines)
