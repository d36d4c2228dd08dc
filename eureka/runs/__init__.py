"""Runs: the run directory, the HTML report, batch runs, and the live display."""
