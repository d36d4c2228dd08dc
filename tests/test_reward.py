"""The reward contract: binding by name, output validation, and the messages for each failure."""

from __future__ import annotations

import pytest
import torch

from eureka.reward.contract import RewardError, compile_reward, validate_output
from eureka.types import Status

FIELDS = ["pole_angle", "cart_position"]
FROM_STATE = "from the state tensors (no .item(), and no .mean() or .sum() over the batch)"


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    return {
        "pole_angle": torch.linspace(-0.1, 0.1, n),
        "cart_position": torch.zeros(n),
        "prev_pole_angle": torch.zeros(n),
        "prev_cart_position": torch.zeros(n),
        "action": torch.ones(n, dtype=torch.long),
    }


def _call(source: str, n: int = 4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return compile_reward(source, "reward.py", FIELDS)(_batch(n), n)


def _error(source: str) -> RewardError:
    with pytest.raises(RewardError) as err:
        _call(source)
    return err.value


def test_parameters_are_bound_by_name() -> None:
    total, parts = _call(
        "def compute_reward(action, prev_pole_angle, pole_angle):\n"
        "    upright = 1.0 - pole_angle.abs() + 0 * prev_pole_angle + 0 * action\n"
        "    return upright, {'upright': upright, 'bonus': torch.ones_like(upright)}\n"
    )
    assert total.shape == (4,)
    assert torch.allclose(total, 1.0 - torch.linspace(-0.1, 0.1, 4).abs())
    assert torch.equal(parts["bonus"], torch.ones(4))


@pytest.mark.parametrize(
    ("imports", "decorator"),
    [
        ("", "@torch.jit.script"),
        ("", "@torch.compile"),
        ("", "@torch.compile(dynamic=True)"),
        ("from torch.jit import script", "@script"),
        ("import torch as th", "@th.jit.script"),
        ("from torch import jit", "@jit.script"),
    ],
)
def test_a_reward_written_for_torchscript_runs_as_eager_pytorch(imports: str, decorator: str) -> None:
    # as Eureka's IsaacGym rewards are written; TorchScript cannot compile code from a string
    source = (
        f"from typing import Dict, Tuple\n{imports}\n\n"
        f"{decorator}\n"
        "def compute_reward(pole_angle: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:\n"
        "    temp: float = 0.5\n"
        "    upright = torch.exp(-pole_angle.abs() / temp)\n"
        "    return upright, {'upright': upright}\n"
    )
    total, parts = _call(source)
    assert torch.equal(total, torch.exp(-torch.linspace(-0.1, 0.1, 4).abs() / 0.5))
    assert torch.equal(parts["upright"], total)
    err = _error(source.replace("temp: float = 0.5", "raise ValueError('x')"))
    assert "reward.py line 6" in err.message  # lines are counted in the reward as written


def test_a_helper_compiled_by_a_call_runs_as_eager_pytorch() -> None:
    total, _ = _call(
        "def _upright(a):\n    return torch.cos(a)\n\n\n"
        "upright = torch.jit.script(_upright)\n"
        "fast = torch.compile(_upright, mode='reduce-overhead')\n\n\n"
        "def compute_reward(pole_angle):\n"
        "    r = upright(pole_angle) + fast(pole_angle)\n"
        "    return r, {'upright': r}\n"
    )
    assert torch.equal(total, 2 * torch.cos(torch.linspace(-0.1, 0.1, 4)))


def test_unknown_parameter_names_the_valid_ones() -> None:
    err = _error("def compute_reward(pole_tip):\n    return pole_tip, {}\n")
    assert err.status == Status.CHECK_FAILED
    assert err.message == (
        "compute_reward has parameter(s) pole_tip that are not state fields; valid names: "
        "pole_angle, cart_position, prev_pole_angle, prev_cart_position, action"
    )


def test_syntax_error_names_the_line() -> None:
    err = _error("def compute_reward(pole_angle)\n    return 1\n")
    assert err.status == Status.CHECK_FAILED
    assert err.message == "reward.py line 1: syntax error: expected ':'"


def test_exception_names_the_line_of_reward_code() -> None:
    err = _error("def compute_reward(pole_angle):\n    x = pole_angle / 0\n    return {}['k'], {}\n")
    assert err.status == Status.CRASHED
    assert err.message == "compute_reward raised KeyError: 'k' (reward.py line 3: return {}['k'], {})"


@pytest.mark.parametrize(
    ("raise_", "named"),
    [
        ("SystemExit(3)", "SystemExit: 3"),
        ("KeyboardInterrupt", "KeyboardInterrupt"),
        ("BaseException('x')", "BaseException: x"),
    ],
)
def test_a_reward_that_raises_past_exception_is_crashed_with_the_raise_named(raise_: str, named: str) -> None:
    """Not a worker that exits with code 3 and nothing to say."""
    err = _error(f"def compute_reward(pole_angle):\n    raise {raise_}\n")
    assert err.status == Status.CRASHED
    assert err.message == f"compute_reward raised {named} (reward.py line 2: raise {raise_})"
    at_import = _error(f"raise {raise_}\ndef compute_reward(pole_angle):\n    return pole_angle, {{}}\n")
    assert (
        at_import.message == f"running reward.py at import raised {named} (reward.py line 1: raise {raise_})"
    )


def test_nan_is_diverged_and_names_the_component() -> None:
    err = _error(
        "import torch\n"
        "def compute_reward(pole_angle):\n"
        "    bad = torch.log(pole_angle)\n"
        "    return bad + 1, {'log': bad, 'fine': pole_angle}\n"
    )
    assert err.status == Status.DIVERGED
    assert err.message == (
        "compute_reward returned NaN or infinite values for 2 of 4 environments (non-finite components: log)"
    )


def test_wrong_shape_is_check_failed() -> None:
    err = _error("import torch\ndef compute_reward(pole_angle):\n    return torch.zeros(4, 3), {}\n")
    assert err.status == Status.CHECK_FAILED
    assert err.message == (
        "the total reward must have shape [N] = [4] (one value per environment), got [4, 3]"
    )


def test_single_tensor_instead_of_pair() -> None:
    err = _error("def compute_reward(pole_angle):\n    return pole_angle\n")
    assert err.message == (
        "compute_reward must return a pair (total reward tensor, dict of component tensors), got Tensor"
    )


def test_complex_dtype_is_rejected() -> None:
    err = _error("import torch\ndef compute_reward(pole_angle):\n    return pole_angle * 1j, {}\n")
    assert err.message == "the total reward must be a real-valued tensor, got dtype torch.complex64"


def test_bool_and_column_outputs_are_accepted_as_floats() -> None:
    total, parts = validate_output(
        (torch.ones(3, 1), {"ok": torch.tensor([True, False, True])}), 3, torch.device("cpu")
    )
    assert total.dtype == torch.float32 and total.shape == (3,)
    assert parts["ok"].tolist() == [1.0, 0.0, 1.0]


def test_reward_cannot_mutate_the_state() -> None:
    batch = _batch()
    before = batch["pole_angle"].clone()
    fn = compile_reward(
        "import torch\ndef compute_reward(pole_angle):\n    pole_angle.zero_()\n"
        "    return torch.ones_like(pole_angle), {}\n",
        "reward.py",
        FIELDS,
    )
    fn(batch, 4)
    assert torch.equal(batch["pole_angle"], before)


@pytest.mark.parametrize(
    ("total", "component", "message"),
    [
        (
            "pole_angle.abs().max().item()",
            "pole_angle",
            "the total reward is a single Python float (0.1), not one value per environment: compute a "
            f"tensor of shape [N] {FROM_STATE}",
        ),
        (
            "pole_angle.abs().sum()",
            "pole_angle",
            "the total reward is a 0-dim tensor (one number for the whole batch), not one value per "
            "environment: compute a tensor of shape [N] from the state tensors (no .item(), and no .mean() "
            "or .sum() over the batch)",
        ),
        (
            "pole_angle",
            "pole_angle.mean()",
            "component 'part' is a 0-dim tensor (one number for the whole batch), not one value per "
            "environment: compute a tensor of shape [N] from the state tensors (no .item(), and no .mean() "
            "or .sum() over the batch)",
        ),
        (
            "pole_angle",
            "0.5",
            "component 'part' is a single Python float (0.5), not one value per environment: compute a "
            f"tensor of shape [N] {FROM_STATE}",
        ),
    ],
)
def test_a_number_for_the_whole_batch_is_rejected(total: str, component: str, message: str) -> None:
    err = _error(f"def compute_reward(pole_angle):\n    return {total}, {{'part': {component}}}\n")
    assert err.status == Status.CHECK_FAILED
    assert err.message == message


def test_a_total_that_follows_the_batch_not_the_state_is_rejected() -> None:
    batch_mean = compile_reward(
        "import torch\ndef compute_reward(pole_angle):\n"
        "    return torch.ones_like(pole_angle) * pole_angle.mean(), {}\n",
        "reward.py",
        FIELDS,
    )
    with pytest.raises(RewardError) as err, batch_mean.varying():
        for i in range(3):
            batch_mean({"pole_angle": torch.arange(4.0) + i}, 4)
    assert err.value.message == (
        "the total reward was one number for all 4 environments at each of 3 smoke-test steps (1.5 to "
        "3.5): it follows the whole batch (a mean or sum over environments?), not each environment's own "
        "state; compute one value per environment from its own state tensors"
    )


def test_a_constant_total_passes() -> None:
    """CartPole's own reward is +1 per step: constants teach through terminations, and a sparse
    bonus that random actions never reach is a constant during the smoke test."""
    alive = compile_reward(
        "import torch\ndef compute_reward(pole_angle):\n"
        "    alive = torch.ones_like(pole_angle)\n    return 0.5 * alive, {'alive': alive}\n",
        "reward.py",
        FIELDS,
    )
    with alive.varying():
        for _ in range(3):
            alive(_batch(), 4)


def test_a_pair_whose_second_item_is_no_dict_and_too_many_components_are_named() -> None:
    none = _error("def compute_reward(pole_angle):\n    return pole_angle, None\n")
    assert none.status == Status.CHECK_FAILED
    assert none.message == (
        "the second item compute_reward returns must be a dict of named component tensors "
        "(e.g. {'upright': upright}), got NoneType"
    )
    many = _error(
        "def compute_reward(pole_angle):\n    return pole_angle, {f'c{i}': pole_angle for i in range(3000)}\n"
    )
    assert many.status == Status.CHECK_FAILED
    assert many.message == (
        "compute_reward returns 3000 components; return at most 64 named terms (each is shown to the "
        "model and plotted: group small terms into one)"
    )


@pytest.mark.parametrize("name", ["", "  ", '<b>cart</b> & "pos"\n', "x" * 101])
def test_a_component_name_that_cannot_be_shown_is_named(name: str) -> None:
    """An empty name, a line break or a paragraph: the next prompt's trajectory analysis broke
    across lines and listed a nameless term."""
    error = _error(f"def compute_reward(pole_angle):\n    return pole_angle, {{{name!r}: pole_angle}}\n")
    assert error.status == Status.CHECK_FAILED
    assert error.message == (
        f"component name {name!r:.60}: give each component a short name on one line (at most 100 "
        "characters, e.g. 'upright'); it is shown to the model and plotted"
    )


def test_a_component_name_in_any_script_is_kept() -> None:
    reward = compile_reward(
        "def compute_reward(pole_angle):\n    return pole_angle, {'stay upright ✓ 直立': pole_angle}\n",
        "reward.py",
        FIELDS,
    )
    _, components = reward(_batch(), 4)
    assert list(components) == ["stay upright ✓ 直立"]


def test_a_reward_that_changes_torchs_default_dtype_is_put_back(capsys: pytest.CaptureFixture[str]) -> None:
    """A float64 default made the policy's layers float64: training crashed on 'mat1 and mat2
    must have the same dtype' in torch's linear layer, naming nothing of the reward."""
    source = (
        "import torch\ntorch.set_default_dtype(torch.float64)\n\n"
        "def compute_reward(pole_angle):\n"
        "    torch.set_default_dtype(torch.float16)\n"
        "    return torch.cos(pole_angle) + torch.zeros(pole_angle.shape[0]), {}\n"
    )
    fn = compile_reward(source, "reward.py", FIELDS)
    assert torch.get_default_dtype() == torch.float32
    total, _ = fn(_batch(4), 4)
    assert torch.get_default_dtype() == torch.float32 and total.dtype == torch.float32
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: reward.py set torch's default dtype to torch.float64; eureka put it back (the policy and the "
        "environments keep theirs): convert inside compute_reward instead",
        "note: compute_reward in reward.py set torch's default dtype to torch.float16; eureka put it back "
        "(the policy and the environments keep theirs): convert inside compute_reward instead",
    ]


def test_a_null_byte_is_a_syntax_error_on_every_python() -> None:
    """Python 3.11.2 (Debian 12's) raises ValueError for it, 3.11.4 and later SyntaxError."""
    err = _error("def compute_reward(pole_angle):\n    return pole_angle, {}  \x00\n")
    assert err.status == Status.CHECK_FAILED
    assert err.message.startswith("reward.py")
    assert "syntax error: source code string cannot contain null bytes" in err.message
