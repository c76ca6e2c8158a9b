// name: recommendations_for_user
// purpose: What was recommended to a user, newest request first and by rank within a
//   request, with whether the user had already interacted with the item (in any split).
// params: user (string, e.g. "u0001"),
//   model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   limit (int, default 50)
// example: kgrec cypher run recommendations_for_user -p user=u0001 -p since=2024-06-01
MATCH (u:User {id: $user})-[r:RECOMMENDED]->(i:Item)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
OPTIONAL MATCH (u)-[t:INTERACTED]->(i)
RETURN r.at AS at, r.request_id AS request_id, r.model_id AS model_id, r.rank AS rank,
       i.id AS item, i.title AS title, r.score AS score, t IS NOT NULL AS interacted
ORDER BY at DESC, request_id, rank
LIMIT $limit
