"""Code for tests and benchmarks only (not installed): random weights in the real formats."""
