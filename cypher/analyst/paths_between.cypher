// name: paths_between
// purpose: Paths of at most 3 hops between a user and an item in either direction, through
//   interactions and the knowledge graph (recorded recommendations are not followed),
//   shortest first: what connects them. Each path lists node ids, display names, and
//   relationship types.
// params: user (string, e.g. "u0001"),
//   item (string, e.g. "i0042"),
//   limit (int, default 25),
//   split (string, default "train", which interactions paths may use: train, val, test or all)
// example: kgrec cypher run paths_between -p user=u0001 -p item=i0042 -p limit=10
MATCH p = (u:User {id: $user})-[*1..3]-(i:Item {id: $item})
WHERE all(r IN relationships(p) WHERE type(r) <> 'RECOMMENDED'
          AND (type(r) <> 'INTERACTED' OR $split = 'all' OR r.split = $split))
RETURN length(p) AS hops,
       [n IN nodes(p) | n.id] AS nodes,
       [n IN nodes(p) | coalesce(n.name, n.title, n.id)] AS names,
       [r IN relationships(p) | type(r)] AS relationships
ORDER BY hops, nodes
LIMIT $limit
