"""Helpers shared by the test suites of every package: real server subprocesses and raw HTTP clients."""
