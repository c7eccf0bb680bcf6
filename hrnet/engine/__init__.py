"""Training and evaluation engine: config, the training loop, evaluation, metrics, checkpoints, DDP."""
