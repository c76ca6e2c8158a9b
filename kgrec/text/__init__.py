"""Text features: node texts -> a language model -> cached, L2-normalised embeddings."""
