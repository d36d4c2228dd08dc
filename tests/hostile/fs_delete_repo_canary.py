"""Deletes a directory of the repository with shutil.rmtree: read-only."""

# expect: crashed
# message: Read-only file system
import torch


def _repo() -> str:
    for entry in torch.sys.path:
        if entry and torch.os.path.isdir(torch.os.path.join(entry, "tests", "hostile")):
            return entry
    return "/nonexistent"


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    sh = torch.sys.modules["importlib"].import_module("shutil")
    sh.rmtree(torch.os.path.join(_repo(), "tests", "hostile", "_canary"))
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
