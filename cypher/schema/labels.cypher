// Nodes per label set, and how many have a human-readable name: a `name` or `title` that is
// not empty and not just the node's id (for kgrec db schema).
MATCH (n)
WITH labels(n) AS labels, n, toString(coalesce(n.name, n.title)) AS name
RETURN labels, count(n) AS nodes,
       count(CASE WHEN name IS NOT NULL AND name <> '' AND name <> n.id THEN 1 END) AS named
