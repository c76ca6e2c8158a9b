// name: top_items_per_genre
// purpose: The most interacted items of each genre (training interactions only by default);
//   one row per (genre, item), at most $limit items per genre, ranked within the genre.
// params: genre (string, default null, genre id or name in any case, such as "genre:drama" or
//   "Drama"; null: every genre),
//   limit (int, default 10, items per genre),
//   split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run top_items_per_genre -p genre=genre:drama -p limit=5
MATCH (g:Genre)<-[:HAS_GENRE]-(i:Item)
WHERE $genre IS NULL OR toLower(g.id) = toLower($genre) OR toLower(g.name) = toLower($genre)
OPTIONAL MATCH (:User)-[r:INTERACTED]->(i)
WHERE $split = 'all' OR r.split = $split
WITH g, i, count(r) AS interactions
ORDER BY interactions DESC, i.id
WITH g, collect({item: i.id, title: i.title, interactions: interactions})[..$limit] AS top
UNWIND range(0, size(top) - 1) AS pos
RETURN g.id AS genre, pos + 1 AS rank, top[pos].item AS item, top[pos].title AS title,
       top[pos].interactions AS interactions
ORDER BY genre, rank
