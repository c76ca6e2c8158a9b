// name: why_recommended
// purpose: Every recorded recommendation of an item to a user, newest first: when it was
//   served, by which model, at which rank and score, in which request, and the explanation
//   paths the model gave (a JSON string: a list of paths).
// params: user (string, e.g. "u0001"),
//   item (string, e.g. "i0042"),
//   model_id (string, default null, only this model's recommendations; null: any model)
// example: kgrec cypher run why_recommended -p user=u0001 -p item=i0042 -f json
MATCH (u:User {id: $user})-[r:RECOMMENDED]->(i:Item {id: $item})
WHERE $model_id IS NULL OR r.model_id = $model_id
RETURN r.at AS at, r.model_id AS model_id, r.request_id AS request_id, r.rank AS rank,
       r.score AS score, r.paths AS paths, i.title AS title
ORDER BY at DESC, request_id, rank
