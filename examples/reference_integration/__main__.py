"""Entry point: `python -m examples.reference_integration`."""

from examples.reference_integration.app import main

main()
