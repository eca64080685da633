"""Contract checks: conformance of simulators and APIs, and breaking-change diffs."""
