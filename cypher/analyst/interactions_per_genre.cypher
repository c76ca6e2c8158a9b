// name: interactions_per_genre
// purpose: Per genre: its items, the interactions with them, the distinct users behind those
//   interactions and their mean rating (an item in two genres counts for both), most
//   interacted genre first.
// params: split (string, default "train", which interactions count: train, val, test or all)
// example: kgrec cypher run interactions_per_genre -p split=all
MATCH (g:Genre)<-[:HAS_GENRE]-(i:Item)
OPTIONAL MATCH (u:User)-[r:INTERACTED]->(i)
WHERE $split = 'all' OR r.split = $split
RETURN g.id AS genre, g.name AS name, count(DISTINCT i) AS items, count(r) AS interactions,
       count(DISTINCT u) AS users, avg(r.rating) AS mean_rating
ORDER BY interactions DESC, genre
