// name: never_recommended_summary
// purpose: How much of the catalogue recorded recommendations never reach (optionally: of
//   one model, or since a time): the items, how many were recommended at least once, how many
//   never and their share of the catalogue, and the never-recommended items' share of the
//   interactions. One row; items_never_recommended lists the items themselves.
// params: model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run never_recommended_summary -p model_id=kgat-2024-06-01
MATCH (i:Item)
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH i, count(r) AS recommended
OPTIONAL MATCH (:User)-[t:INTERACTED]->(i)
WHERE $split = 'all' OR t.split = $split
WITH i, recommended, count(t) AS interactions
WITH count(i) AS items,
     count(CASE WHEN recommended = 0 THEN 1 END) AS never,
     toInteger(sum(interactions)) AS interactions,
     toInteger(sum(CASE WHEN recommended = 0 THEN interactions ELSE 0 END)) AS never_interactions
RETURN items, items - never AS recommended_items, never AS never_recommended,
       CASE WHEN items = 0 THEN null ELSE toFloat(never) / items END AS never_recommended_share,
       interactions, never_interactions AS never_recommended_interactions,
       CASE WHEN interactions = 0 THEN null
            ELSE toFloat(never_interactions) / interactions END
         AS never_recommended_interaction_share
