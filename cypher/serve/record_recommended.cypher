// Record one served recommendation list: one RECOMMENDED relationship per (user, item) of the
// request, keyed by request_id so that recording the same request again changes nothing
// (MERGE finds the existing relationship). `at` keeps the time of the first recording.
// Parameters: $rows = [{user_id, item_id, request_id, rank: int, score: float,
//                       model_id: string, at: ISO-8601 UTC string, paths: JSON string}, ...]
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
MATCH (i:Item {id: row.item_id})
MERGE (u)-[r:RECOMMENDED {request_id: row.request_id}]->(i)
ON CREATE SET r.at = row.at
SET r.rank = row.rank, r.score = row.score, r.model_id = row.model_id, r.paths = row.paths
RETURN count(r) AS recorded
