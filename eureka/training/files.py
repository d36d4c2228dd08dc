"""The names of the files a training job writes in its folder (one home for each)."""

from eureka.types import METRICS_FILE  # the TrainResult; named with the candidate's files

__all__ = [
    "JOB_FILE",
    "LOG_FILE",
    "METRICS_FILE",
    "OBS_STATS_FILE",
    "PROGRESS_FILE",
    "SMOKE_FILE",
    "SMOKE_PROGRESS_FILE",
    "TRAINED_FILE",
    "VIDEO_FILE",
]

JOB_FILE = "job.json"
"""The TrainJob the worker runs."""
LOG_FILE = "train.log"
"""The worker's stdout and stderr."""
PROGRESS_FILE = "progress.json"
"""Rewritten as the job trains: env_steps, total, fitness so far, elapsed seconds."""
SMOKE_FILE = "smoke.txt"
"""Written by a `smoke_first` job once its smoke test passed: the smoke test's message."""
SMOKE_PROGRESS_FILE = "smoke_progress.json"
"""Rewritten each second while the smoke test steps (`session.SmokeWatch`): its steps so far and
the seconds spent inside the reward, which a smoke test killed at its limit is explained by."""
TRAINED_FILE = "trained.json"
"""The TrainResult as the training process wrote it, before F was measured again outside it
(`eureka.training.scoring`): what METRICS_FILE says comes from the process that ran no reward."""
VIDEO_FILE = "rollout.mp4"
"""The final policy's filmed episode."""
OBS_STATS_FILE = "obs_norm.npz"
"""SB3's observation normaliser statistics without pickle (vecnormalize.pkl has them pickled)."""
