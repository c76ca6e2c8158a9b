// name: items_never_recommended
// purpose: Items no recorded recommendation ever pointed to (optionally: of one model, or
//   since a time), most interacted first: the catalogue the recommender never shows.
// params: model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   limit (int, default 100),
//   split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run items_never_recommended -p model_id=kgat-2024-06-01 -p limit=20
MATCH (i:Item)
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH i, count(r) AS recommended
WHERE recommended = 0
OPTIONAL MATCH (:User)-[t:INTERACTED]->(i)
WHERE $split = 'all' OR t.split = $split
RETURN i.id AS item, i.title AS title, count(t) AS interactions
ORDER BY interactions DESC, item
LIMIT $limit
