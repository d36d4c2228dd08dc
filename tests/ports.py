"""What the port tests share: float tolerances, and a port's tensor compared with gymnasium's value."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

F32 = {"rtol": 1e-6, "atol": 1e-6}
"""float32 values (observations, rewards): float32 rounding of the same operations."""
F64 = {"rtol": 1e-9, "atol": 1e-9}
"""float64 values (qpos, qvel, goals): the same MuJoCo state, bit-equal in practice."""


def close(mine: torch.Tensor, theirs: Any, tol: dict[str, float] = F32) -> None:
    """Assert the port's `mine` equals gymnasium's `theirs` within `tol`, in `mine`'s precision."""
    expected = torch.as_tensor(np.asarray(theirs, dtype=np.float64))
    torch.testing.assert_close(mine.to(torch.float64), expected.to(mine.dtype).to(torch.float64), **tol)
