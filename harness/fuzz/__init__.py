"""`harness fuzz`: generated lifecycles played through the integration, judged after every
step; a failure shrunk and written out as a runnable scenario (``harness.fuzz.run``)."""
