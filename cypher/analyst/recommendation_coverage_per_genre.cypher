// name: recommendation_coverage_per_genre
// purpose: Per genre, how much of its catalogue recorded recommendations reach: items,
//   items recommended at least once, coverage = recommended_items / items, and the number
//   and share of all recommendations that went to the genre's items (an item in two genres
//   counts for both, so shares may add up to more than 1).
// params: model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it)
// example: kgrec cypher run recommendation_coverage_per_genre -p model_id=kgat-2024-06-01
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(:Item)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH count(r) AS total
MATCH (g:Genre)<-[:HAS_GENRE]-(i:Item)
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH total, g, i, count(r) AS recs
WITH total, g, count(i) AS items,
     count(CASE WHEN recs > 0 THEN 1 END) AS recommended_items,
     toInteger(sum(recs)) AS recommendations
RETURN g.id AS genre, g.name AS name, items, recommended_items,
       toFloat(recommended_items) / items AS coverage, recommendations,
       CASE WHEN total = 0 THEN null ELSE toFloat(recommendations) / total END
         AS recommendation_share
ORDER BY coverage DESC, genre
