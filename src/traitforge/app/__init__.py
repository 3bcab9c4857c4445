"""Orchestration that spans every stage: one function per command (`workflows`), the closed
loop (`loop`) and the workspace report (`report`). Only the CLI and benchmarks import it."""
