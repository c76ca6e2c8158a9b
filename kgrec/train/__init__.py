"""Training: negative sampling, distillation teachers, the training loop and checkpoints."""
