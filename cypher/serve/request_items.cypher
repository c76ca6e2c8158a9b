// The items a user's request id was recorded with (to explain why a retry was refused).
// Parameters: $user_id, $request_id
MATCH (:User {id: $user_id})-[r:RECOMMENDED {request_id: $request_id}]->(i:Item)
RETURN i.id AS item_id ORDER BY r.rank
