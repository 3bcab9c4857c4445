"""Annotators: backends, agreement and aggregation of human judgements."""
