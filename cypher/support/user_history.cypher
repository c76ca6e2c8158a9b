// name: user_history
// purpose: A user's interactions, latest first: item, title, rating, time (Unix seconds) and
//   which split (train, val, test) the interaction belongs to.
// params: user (string, e.g. "u0001"),
//   limit (int, default 50)
// example: kgrec cypher run user_history -p user=u0001 -p limit=20
MATCH (u:User {id: $user})-[r:INTERACTED]->(i:Item)
RETURN i.id AS item, i.title AS title, r.rating AS rating, r.timestamp AS timestamp,
       r.split AS split
ORDER BY timestamp DESC, item
LIMIT $limit
