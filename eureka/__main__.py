"""`python -m eureka` runs the CLI."""

from eureka.cli import main

main()
