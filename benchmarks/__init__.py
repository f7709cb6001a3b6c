"""Benchmarks of the hub (`bosai bench …`): commands that print figures, never timed tests."""
