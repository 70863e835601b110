"""The harness: suites of test cases, running a model over them, storing and tabulating scores."""
