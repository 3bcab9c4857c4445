"""Reward models: training, evaluation and scoring (built on the exported pairs)."""
