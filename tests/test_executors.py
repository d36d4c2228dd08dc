"""The executor interface: the local default, and the Ray executor's message when Ray is missing."""

from __future__ import annotations

import sys

import pytest

from eureka.errors import ConfigError
from eureka.training.executors import LocalExecutor, RayExecutor, make_executor
from eureka.types import SolveConfig


def test_local_is_the_default() -> None:
    assert isinstance(make_executor(SolveConfig(task="cartpole", model="m")), LocalExecutor)


def test_ray_missing_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ConfigError) as err:
        RayExecutor("127.0.0.1:1")
    assert str(err.value) == (
        "--executor ray needs Ray: pip install 'eureka-rewards[ray]' (and a cluster to connect to)"
    )
