"""Data stages: the dataset contract, adapters, validation, id maps, splits, HeteroData."""
