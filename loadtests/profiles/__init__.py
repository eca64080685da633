"""Locustfiles, one per load profile (the catalogue is `harness.load.profiles`)."""
