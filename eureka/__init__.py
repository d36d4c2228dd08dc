"""eureka: LLM-written dense reward functions for reinforcement learning, improved by evolution."""

import os
import sys
from typing import Any

if sys.platform.startswith("linux"):
    # eureka renders off-screen only (rollout videos, `tasks check`): MuJoCo's default, GLFW, needs
    # a display and fails on a headless machine; EGL does not. A user's own MUJOCO_GL wins.
    os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
__all__ = ["state_env", "wrap", "wrap_vector"]


def __getattr__(name: str) -> Any:
    """`eureka.wrap`, `eureka.wrap_vector`, `eureka.state_env`, imported on first use (they load
    torch and gymnasium, which `import eureka` alone should not)."""
    if name in __all__:
        from eureka.training import wrappers

        return getattr(wrappers, name)
    raise AttributeError(f"module 'eureka' has no attribute {name!r}")
