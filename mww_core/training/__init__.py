"""Training: the Trainer, its data sampling and checkpoints."""
