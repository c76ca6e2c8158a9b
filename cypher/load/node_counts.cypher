// Number of nodes per label (the first label of each node).
MATCH (n)
RETURN labels(n)[0] AS label, count(n) AS n
