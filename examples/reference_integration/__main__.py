"""Entry point: `python -m examples.reference_integration`. The worker process is started
before the receiver's own imports, so the two load side by side."""

from examples.reference_integration.launch import Workers

workers = Workers()

from examples.reference_integration.app import main  # noqa: E402  (after the start, on purpose)

main(workers)
