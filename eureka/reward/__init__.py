"""The reward stage: the reward contract (compiling generated code into a callable), static
checks, and the Reward Critic that verifies code before training."""
