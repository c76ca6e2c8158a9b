// name: similar_users
// purpose: Users most similar to a user by the items both interacted with: shared items,
//   the Jaccard index shared / (mine + theirs - shared), ranked by Jaccard, then shared items.
// params: user (string, e.g. "u0001"),
//   limit (int, default 10),
//   split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run similar_users -p user=u0001 -p limit=5
MATCH (me:User {id: $user})-[r:INTERACTED]->(:Item)
WHERE $split = 'all' OR r.split = $split
WITH me, count(r) AS mine
MATCH (me)-[r1:INTERACTED]->(i:Item)<-[r2:INTERACTED]-(other:User)
WHERE other <> me AND ($split = 'all' OR (r1.split = $split AND r2.split = $split))
WITH mine, other, count(DISTINCT i) AS shared
MATCH (other)-[r:INTERACTED]->(:Item)
WHERE $split = 'all' OR r.split = $split
WITH mine, other, shared, count(r) AS theirs
RETURN other.id AS user, shared, mine, theirs,
       toFloat(shared) / (mine + theirs - shared) AS jaccard
ORDER BY jaccard DESC, shared DESC, user
LIMIT $limit
