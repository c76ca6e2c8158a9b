// Forget users (kgrec users forget): delete each :User node with every relationship it has
// (its INTERACTED interactions, its RECOMMENDED served records, any attribute links), in
// one query, so it happens whole or not at all. Counts what was removed, per kind.
// Parameters: $ids (list of user ids).
MATCH (u:User)
WHERE u.id IN $ids
OPTIONAL MATCH (u)-[r]-()
WITH u,
     count(r) AS relationships,
     sum(CASE WHEN type(r) = 'INTERACTED' THEN 1 ELSE 0 END) AS interacted,
     sum(CASE WHEN type(r) = 'RECOMMENDED' THEN 1 ELSE 0 END) AS recommended
DETACH DELETE u
RETURN count(u) AS users,
       sum(relationships) AS relationships,
       sum(interacted) AS interacted,
       sum(recommended) AS recommended
