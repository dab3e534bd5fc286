"""The load harness behind benchmarks/run.py: servers, scenarios, load drivers, runs, reports."""
