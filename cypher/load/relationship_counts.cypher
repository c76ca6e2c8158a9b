// Number of relationships per type.
MATCH ()-[r]->()
RETURN type(r) AS type, count(r) AS n
