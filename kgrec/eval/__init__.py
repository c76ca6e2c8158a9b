"""Evaluation: full-ranking metrics, OGB-style sampled metrics and non-GNN baselines."""
