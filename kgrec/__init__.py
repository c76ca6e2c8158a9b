"""kgrec: a knowledge-graph recommender.

Triples go into a graph database (FalkorDB embedded, or Neo4j) and into a PyTorch Geometric
``HeteroData``; a relation-aware GNN learns from them. Importing this package has no side
effects and imports nothing heavy.
"""

__version__ = "0.1.0"
