"""The feedback stage: the Trajectory Analyzer, reward reflection, and the judges (a human's
critique, the ranking page, the synthetic preference oracle)."""
