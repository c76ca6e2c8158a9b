// name: served_genre_mix
// purpose: The genre mix of a list served to a user (their latest recorded request unless
//   request_id says which) beside the genre mix of the user's own history: per genre, the
//   served items and their share of the list, the user's interacted items and their share of
//   the history (an item in two genres counts for both, so shares may add up to more than 1).
//   Answers "all my recommendations are the same genre".
// params: user (string, e.g. "u0001"),
//   request_id (string, default null, one request; null: the user's latest),
//   model_id (string, default null, only this model's lists; null: any model),
//   split (string, default "all", which interactions make the history: train, val, test or all)
// example: kgrec cypher run served_genre_mix -p user=u0001
MATCH (u:User {id: $user})-[r:RECOMMENDED]->(:Item)
WHERE ($model_id IS NULL OR r.model_id = $model_id)
  AND ($request_id IS NULL OR r.request_id = $request_id)
WITH u, r
ORDER BY r.at DESC, r.request_id DESC
WITH u, head(collect(r.request_id)) AS request_id, head(collect(r.at)) AS at,
     head(collect(r.model_id)) AS model_id
MATCH (u)-[s:RECOMMENDED]->(i:Item)
WHERE s.request_id = request_id
WITH u, request_id, at, model_id, collect(DISTINCT i) AS served
OPTIONAL MATCH (u)-[t:INTERACTED]->(seen:Item)
WHERE $split = 'all' OR t.split = $split
WITH request_id, at, model_id, served, collect(DISTINCT seen) AS history
MATCH (g:Genre)
OPTIONAL MATCH (g)<-[:HAS_GENRE]-(i:Item)
WHERE i IN served
WITH request_id, at, model_id, served, history, g, count(i) AS served_items
OPTIONAL MATCH (g)<-[:HAS_GENRE]-(h:Item)
WHERE h IN history
WITH request_id, at, model_id, served, history, g, served_items, count(h) AS history_items
WHERE served_items > 0 OR history_items > 0
RETURN g.id AS genre, g.name AS name, served_items,
       toFloat(served_items) / size(served) AS served_share, history_items,
       CASE WHEN size(history) = 0 THEN null ELSE toFloat(history_items) / size(history) END
         AS history_share,
       request_id, model_id, at
ORDER BY served_items DESC, history_items DESC, genre
