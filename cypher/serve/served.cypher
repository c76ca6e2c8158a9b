// Every recorded recommendation of an item to a user, newest first (kgrec explain --served).
// Parameters: $user_id (string), $item_id (string)
MATCH (u:User {id: $user_id})-[r:RECOMMENDED]->(i:Item {id: $item_id})
RETURN r.request_id AS request_id, r.rank AS rank, r.score AS score, r.model_id AS model_id,
       r.at AS at, r.paths AS paths
ORDER BY at DESC, request_id
