"""Serving: top-k recommendations, path explanations and the record of what was served.

The fast path (:mod:`~kgrec.serve.bundle`, :mod:`~kgrec.serve.recommend`) needs only numpy and
json: a checkpoint's embeddings are exported once into a *serving bundle* of ``.npy`` files
that are memory-mapped at start-up, so ``kgrec recommend`` answers without importing torch or
pandas. :mod:`~kgrec.serve.explain` (pandas) finds graph paths from a user to an item and
ranks them by their share of the model's score; :mod:`~kgrec.serve.record` writes the served
lists into the graph database as ``RECOMMENDED`` relationships.

Nothing is imported here, so ``import kgrec.serve`` stays cheap.
"""
