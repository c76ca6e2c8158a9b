// name: long_tail_exposure
// purpose: How much exposure long-tail items get. Items are ranked by interactions (most
//   first, ties by item id); the head is the first ceil(head_share * items) of them, the
//   long tail all others. Compares the tail's share of interactions with its share of
//   recorded recommendations; exposure_ratio = recommendation share / interaction share
//   (above 1: the recommender favours the tail more than users do). One row.
// params: head_share (float, default 0.2, fraction of items in the head),
//   model_id (string, default null, only this model's recommendations; null: any model),
//   since (string, default null, ISO-8601 time; only recommendations served at or after it),
//   split (string, default "train", which interactions rank the items: train, val, test or all)
// example: kgrec cypher run long_tail_exposure -p head_share=0.2 -p model_id=kgat-2024-06-01
MATCH (i:Item)
OPTIONAL MATCH (:User)-[t:INTERACTED]->(i)
WHERE $split = 'all' OR t.split = $split
WITH i, count(t) AS interactions
ORDER BY interactions DESC, i.id
WITH collect(i.id) AS ranked, collect(interactions) AS counts
WITH ranked, counts, toInteger(ceil($head_share * size(ranked))) AS head_items
UNWIND range(0, size(ranked) - 1) AS pos
WITH ranked[pos] AS item_id, counts[pos] AS interactions, pos >= head_items AS tail,
     size(ranked) AS items, head_items
MATCH (i:Item {id: item_id})
OPTIONAL MATCH (:User)-[r:RECOMMENDED]->(i)
WHERE ($model_id IS NULL OR r.model_id = $model_id) AND ($since IS NULL OR r.at >= $since)
WITH items, head_items, i, interactions, tail, count(r) AS recs
WITH items, head_items,
     toInteger(sum(interactions)) AS interactions,
     toInteger(sum(CASE WHEN tail THEN interactions ELSE 0 END)) AS tail_interactions,
     toInteger(sum(recs)) AS recommendations,
     toInteger(sum(CASE WHEN tail THEN recs ELSE 0 END)) AS tail_recommendations
WITH items, head_items, interactions, tail_interactions, recommendations, tail_recommendations,
     CASE WHEN interactions = 0 THEN null
          ELSE toFloat(tail_interactions) / interactions END AS tail_interaction_share,
     CASE WHEN recommendations = 0 THEN null
          ELSE toFloat(tail_recommendations) / recommendations END AS tail_recommendation_share
RETURN items, items - head_items AS tail_items, interactions, tail_interactions,
       tail_interaction_share, recommendations, tail_recommendations,
       tail_recommendation_share,
       CASE WHEN tail_interaction_share IS NULL OR tail_interaction_share = 0
              OR tail_recommendation_share IS NULL THEN null
            ELSE tail_recommendation_share / tail_interaction_share END AS exposure_ratio
