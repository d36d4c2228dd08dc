"""eureka: LLM-written dense reward functions for reinforcement learning, improved by evolution."""

__version__ = "0.1.0"
