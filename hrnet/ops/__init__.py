"""Tensor operations shared by the models, the data transforms and the evaluators."""
