"""Graph stores: the embedded FalkorDB server and Neo4j, behind one interface."""
