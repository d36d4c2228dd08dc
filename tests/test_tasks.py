"""Task discovery and strict loading of task.yaml; error messages asserted exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_task

from eureka import tasks
from eureka.errors import TaskError

BUNDLED = sorted(p.name for p in (REPO / "tasks").iterdir() if (p / "task.yaml").is_file())
CARTPOLE_YAML = (REPO / "tasks" / "cartpole" / "task.yaml").read_text()


def _cartpole_with(root: Path, name: str = "mytask", **changes: object) -> Path:
    data = yaml.safe_load(CARTPOLE_YAML)
    data["name"] = name
    for dotted, value in changes.items():
        keys = dotted.split("__")
        target = data
        for key in keys[:-1]:
            target = target[key]
        if value is None:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return write_task(root, name, yaml.safe_dump(data))


def test_every_required_task_is_bundled() -> None:
    required = {
        "cartpole",
        "pendulum",
        "mountain_car_continuous",
        "acrobot",
        "reacher",
        "inverted_double_pendulum",
        "hopper",
        "half_cheetah",
        "ant",
        "half_cheetah_backward",
        "point_mass",
    }
    assert required <= set(BUNDLED)
    assert required <= set(tasks.discover())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_tasks_load(name: str) -> None:
    task = tasks.load(name)
    assert task.name == name
    assert task.file("human_reward.py") is not None
    assert task.spec.description and task.spec.fitness.description
    for field in task.spec.state.values():
        assert field.description


def test_unknown_task_suggests_the_closest_name() -> None:
    with pytest.raises(TaskError) as err:
        tasks.load("cartpol")
    assert str(err.value).startswith("unknown task 'cartpol' (did you mean 'cartpole'?); known tasks: ")


def test_unknown_key_is_named_with_file_and_suggestion(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path, training__timestep=5, training__timesteps=None)
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    path = folder / "task.yaml"
    assert str(err.value) == (
        f"{path}: missing key 'training.timesteps'\n"
        f"{path}: unknown key 'training.timestep' (did you mean 'timesteps'?)"
    )


def test_unknown_key_inside_a_state_field(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path, state__cart_position__units="m")
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value) == (
        f"{folder / 'task.yaml'}: unknown key 'state.cart_position.units' (did you mean 'unit'?)"
    )


def test_missing_top_level_key(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path, fitness=None)
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value) == f"{folder / 'task.yaml'}: missing key 'fitness'"


def test_bad_value_is_named(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path, fitness__metric="speed")
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value).startswith(f"{folder / 'task.yaml'}: key 'fitness.metric': Input should be ")


def test_a_task_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "binary"
    folder.mkdir()
    (folder / "task.yaml").write_bytes(b"\xff\xfe\x00name: binary\n")
    with pytest.raises(TaskError, match=r"task\.yaml: cannot be read: 'utf-8' codec can't decode"):
        tasks.load(str(folder))


def test_a_task_python_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path)
    (folder / "human_reward.py").write_bytes(b"# \xe9\ndef compute_reward(pole_angle):\n    return 1\n")
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    reason = "invalid continuation byte at byte 2"
    assert str(err.value) == f"{folder / 'human_reward.py'}: not UTF-8 text ({reason}); save it as UTF-8"


def test_a_key_given_twice_is_named_not_merged(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys silently: a state field defined twice lost one."""
    folder = _cartpole_with(tmp_path)
    text = (folder / "task.yaml").read_text()
    (folder / "task.yaml").write_text(
        text.replace("state:\n", "state:\n  cart_position: {obs: 1, description: again}\n", 1)
    )
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value).startswith(
        f"{folder / 'task.yaml'}: not valid YAML: key 'cart_position' is given twice (line "
    )
    assert str(err.value).endswith("); keep one")


def test_yaml_that_does_not_parse_is_named_in_one_line(tmp_path: Path) -> None:
    """Where and what, not the parser's four lines about a "<unicode string>"."""
    folder = _cartpole_with(tmp_path)
    (folder / "task.yaml").write_text("name: cartpole\nenv: {id: [CartPole-v1\n")
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value) == (
        f"{folder / 'task.yaml'}: not valid YAML: line 3 column 1: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence)"
    )


def test_name_must_match_folder(tmp_path: Path) -> None:
    _cartpole_with(tmp_path, name="other").rename(tmp_path / "renamed")
    with pytest.raises(TaskError) as err:
        tasks.load(str(tmp_path / "renamed"))
    assert str(err.value) == (
        f"{tmp_path / 'renamed' / 'task.yaml'}: name 'other' must match the folder name 'renamed'"
    )


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    folder = write_task(tmp_path, "listy", "- a\n- b\n")
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert str(err.value) == f"{folder / 'task.yaml'}: must be a mapping of keys to values, got list"


def test_folder_without_task_yaml(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskError) as err:
        tasks.load(str(tmp_path / "empty"))
    assert str(err.value) == f"{tmp_path / 'empty'}: not a task folder (it has no task.yaml)"


def test_tasks_path_variable_adds_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mine"
    _cartpole_with(root, name="my_cartpole")
    monkeypatch.setenv("EUREKA_TASKS_PATH", str(root))
    assert tasks.discover()["my_cartpole"] == (root / "my_cartpole").resolve()
    assert tasks.load("my_cartpole").spec.env.id == "CartPole-v1"


def test_task_files_import_their_own_siblings(tmp_path: Path) -> None:
    """Two task folders that both have an env.py: each state.py sees its own."""
    seen = []
    for name, value in (("first", 1.0), ("second", 2.0)):
        folder = _cartpole_with(tmp_path, name=name)
        (folder / "env.py").write_text(f"VALUE = {value}\n")
        (folder / "state.py").write_text("from env import VALUE\n\ndef get_state(env, obs):\n    return {}\n")
        module = tasks.load_module(tasks.load(str(folder)), "state.py")
        assert module is not None
        seen.append(module.VALUE)
    assert seen == [1.0, 2.0]
    import sys

    assert "env" not in sys.modules  # nothing leaks under the plain name


def test_batched_cuda_settings_apply_on_a_cuda_device_only(tmp_path: Path) -> None:
    folder = _cartpole_with(tmp_path, training__batched__cuda={"num_envs": 4096, "learning_rate": 0.003})
    spec = tasks.load(str(folder)).spec.training.batched
    assert spec is not None
    assert spec.on("cpu") is spec
    on_gpu = spec.on("cuda")
    assert (on_gpu.num_envs, on_gpu.learning_rate, on_gpu.num_steps) == (4096, 0.003, spec.num_steps)
    assert on_gpu.cuda == {}


@pytest.mark.parametrize(
    ("cuda", "message"),
    [
        ({"num_env": 4096}, "in cuda, 'num_env': Extra inputs are not permitted"),
        ({"timesteps": 10}, "training.batched.cuda cannot set timesteps"),
        ({"num_envs": 0}, "in cuda, 'num_envs': Input should be greater than 0"),
    ],
)
def test_bad_batched_cuda_settings_fail_at_load(tmp_path: Path, cuda: dict[str, int], message: str) -> None:
    folder = _cartpole_with(tmp_path, training__batched__cuda=cuda)
    with pytest.raises(TaskError) as err:
        tasks.load(str(folder))
    assert message in str(err.value)
