"""Batched environments behind one interface (`BatchedEnv`): native torch ports of classic
control, threaded MuJoCo, and gymnasium's vector env as the fallback for any task folder."""

from eureka.training.sim.base import ActionSpec, BatchedEnv, Step

__all__ = ["ActionSpec", "BatchedEnv", "Step"]
