// name: co_recommended_pairs
// purpose: Pairs of items served together in the same recorded list (request), most frequent
//   first: how many lists hold both, and that count's share of all lists. Shows which items
//   the recommender keeps bundling.
// params: model_id (string, default null, only this model's lists; null: any model),
//   since (string, default null, ISO-8601 time; only lists served at or after it),
//   min_lists (int, default 1, pairs in at least this many lists),
//   limit (int, default 25)
// example: kgrec cypher run co_recommended_pairs -p min_lists=5 -p limit=10
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(:Item)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH count(DISTINCT r.request_id) AS all_lists
MATCH (u:User)-[r1:RECOMMENDED]->(a:Item)
WHERE ($model_id IS NULL OR r1.model_id = $model_id) AND ($since IS NULL OR r1.at >= $since)
MATCH (u)-[r2:RECOMMENDED]->(b:Item)
WHERE r2.request_id = r1.request_id AND a.id < b.id
WITH all_lists, a, b, count(r2) AS lists
WHERE lists >= $min_lists
RETURN a.id AS item_a, a.title AS title_a, b.id AS item_b, b.title AS title_b, lists,
       toFloat(lists) / all_lists AS list_share
ORDER BY lists DESC, item_a, item_b
LIMIT $limit
