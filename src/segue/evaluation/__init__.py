"""Metrics as pure functions, evaluation protocols, the evaluator and reports."""
