// Record one served recommendation list, whole or not at all, in one query (so it is atomic):
// one RECOMMENDED relationship per (user, item) of the request, keyed by request_id, so that
// recording the same request again changes nothing (MERGE finds the existing relationship;
// `at` keeps the time of the first recording; `ts` is the server's clock then, in ms, so a
// rebuild can tell which records arrived while it copied the others). Nothing is written when the user or an item
// is missing, or when this user's request id was already recorded with other items.
// Parameters: $user_id, $request_id, $rows = [{user_id, item_id, request_id, rank: int,
//             score: float, model_id: string, at: ISO-8601 UTC string, paths: JSON,
//             reasons: [string] (customer-facing sentences), shares: [float]}, ...]
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (i:Item {id: row.item_id})
WITH collect({u: u, i: i, row: row}) AS found
WHERE size(found) = size($rows)
OPTIONAL MATCH (:User {id: $user_id})-[old:RECOMMENDED {request_id: $request_id}]->(prev:Item)
WITH found, collect(prev.id) AS before
WHERE size(before) = 0
   OR (size(before) = size(found) AND all(x IN before WHERE x IN [f IN found | f.row.item_id]))
UNWIND found AS f
WITH f.u AS u, f.i AS i, f.row AS row
MERGE (u)-[r:RECOMMENDED {request_id: row.request_id}]->(i)
ON CREATE SET r.at = row.at, r.ts = timestamp()
SET r.rank = row.rank, r.score = row.score, r.model_id = row.model_id, r.paths = row.paths,
    r.reasons = row.reasons, r.shares = row.shares
RETURN count(r) AS recorded
