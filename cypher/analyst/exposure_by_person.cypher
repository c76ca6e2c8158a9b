// name: exposure_by_person
// purpose: Exposure against interactions by person (director, actor, writer ...): for each
//   entity the items link to through one relationship type, its items, the interactions with
//   them and their share of all interactions, the recorded recommendations of them and their
//   share of all recommendations, and exposure_ratio = recommendation share / interaction
//   share (above 1: recommended more than users interact with them). An item with two
//   directors counts for both. Most interacted first.
// params: relation (string, default "DIRECTED_BY", relationship type from items to people,
//   any case: DIRECTED_BY, ACTOR (ml-100k), STARRING (demo), WRITTEN_BY ...),
//   model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   split (string, default "train", which interactions count: train, val, test or all),
//   limit (int, default 25)
// example: kgrec cypher run exposure_by_person -p relation=ACTOR -p limit=10
MATCH (i:Item)
OPTIONAL MATCH (:User)-[t:INTERACTED]->(i)
WHERE $split = 'all' OR t.split = $split
WITH i, count(t) AS interactions
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH i, interactions, count(r) AS recommendations
WITH collect({item: i, interactions: interactions, recommendations: recommendations}) AS rows,
     toInteger(sum(interactions)) AS all_interactions,
     toInteger(sum(recommendations)) AS all_recommendations
UNWIND rows AS row
WITH row.item AS i, row.interactions AS interactions, row.recommendations AS recommendations,
     all_interactions, all_recommendations
MATCH (i)-[l]->(p)
WHERE type(l) = toUpper($relation)
WITH p, all_interactions, all_recommendations, count(l) AS items,
     toInteger(sum(interactions)) AS interactions,
     toInteger(sum(recommendations)) AS recommendations
WITH p, items, interactions, recommendations,
     CASE WHEN all_interactions = 0 THEN null
          ELSE toFloat(interactions) / all_interactions END AS interaction_share,
     CASE WHEN all_recommendations = 0 THEN null
          ELSE toFloat(recommendations) / all_recommendations END AS recommendation_share
RETURN p.id AS person, p.name AS name, items, interactions, interaction_share,
       recommendations, recommendation_share,
       CASE WHEN interaction_share IS NULL OR interaction_share = 0
              OR recommendation_share IS NULL THEN null
            ELSE recommendation_share / interaction_share END AS exposure_ratio
ORDER BY interactions DESC, recommendations DESC, person
LIMIT $limit
