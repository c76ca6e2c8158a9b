// name: item_popularity
// purpose: Every item with its interactions and how often it was recommended, most interacted
//   first (ties by item id): the data for a long-tail plot (rank against interactions and
//   against times recommended).
// params: model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run item_popularity -f csv > popularity.csv
MATCH (i:Item)
OPTIONAL MATCH (:User)-[t:INTERACTED]->(i)
WHERE $split = 'all' OR t.split = $split
WITH i, count(t) AS interactions
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
RETURN i.id AS item, i.title AS title, interactions, count(r) AS recommended
ORDER BY interactions DESC, item
