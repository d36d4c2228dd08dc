"""The training stage: one training session fed by two learners (SB3, batched PPO on sim/),
the sandboxed worker, jobs, executors (local, Ray), successive halving, and constant tuning."""
