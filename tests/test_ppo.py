"""The batched PPO's bookkeeping: observation normalisation survives a reload, the value the
rollout stores is the critic's, and only time-limited steps bootstrap from the reached state."""

from __future__ import annotations

import torch

from eureka.training.ppo import PPO
from eureka.training.sim.base import ActionSpec
from eureka.types import BatchedSpec

BOX = ActionSpec(discrete=None, dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))
CPU = torch.device("cpu")


def _ppo(**overrides: object) -> PPO:
    config = BatchedSpec.model_validate({"num_envs": 4, "num_steps": 2, "minibatches": 2, **overrides})
    return PPO(3, BOX, config, CPU)


def test_normalisation_uses_the_statistics_it_was_loaded_with() -> None:
    torch.manual_seed(0)
    trained = _ppo()
    trained.model.obs_rms.update(torch.randn(64, 3) * 5 + 2)  # type: ignore[union-attr]
    fresh = _ppo()
    x = torch.randn(4, 3)
    fresh.model.value(x)  # normalises with the initial statistics, which it may cache
    fresh.load_state_dict(trained.state_dict())
    assert torch.equal(fresh.model.value(x), trained.model.value(x))
    rms = trained.model.obs_rms
    assert rms is not None
    expected = ((x - rms.mean) / torch.sqrt(rms.var + 1e-8)).float().clamp(-10, 10)
    torch.testing.assert_close(rms.normalize(x), expected)


def test_stored_values_are_the_critics() -> None:
    ppo = _ppo()
    obs = torch.randn(4, 3)
    ppo.act(obs)
    torch.testing.assert_close(ppo.values[0], ppo.model.value(obs))


def test_only_truncated_steps_bootstrap_from_the_state_they_reached() -> None:
    ppo = _ppo(normalize_reward=False)
    ppo.act(torch.zeros(4, 3))
    final = torch.randn(4, 3)
    truncated = torch.tensor([False, True, False, False])
    terminated = torch.tensor([False, False, True, False])
    ppo.store(torch.ones(4), terminated, truncated, final)
    bootstrap = 1.0 + ppo.config.gamma * ppo.model.value(final)[1]
    torch.testing.assert_close(ppo.rewards[0], torch.stack([torch.tensor(1.0), bootstrap, *torch.ones(2)]))
    assert ppo.dones[0].tolist() == [0.0, 1.0, 1.0, 0.0]
    ppo.act(torch.zeros(4, 3))
    nothing = torch.zeros(4, dtype=torch.bool)
    assert ppo.store(torch.ones(4), nothing, nothing, final)  # the buffer is full after num_steps
    assert torch.equal(ppo.rewards[1], torch.ones(4))
