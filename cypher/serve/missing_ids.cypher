// The ids a served list names that the graph does not hold (checked before recording, so a
// list is recorded whole or not at all).
// Parameters: $user_id (string), $item_ids (list of strings, not empty)
OPTIONAL MATCH (u:User {id: $user_id})
WITH count(u) AS users
UNWIND $item_ids AS item_id
OPTIONAL MATCH (i:Item {id: item_id})
WITH users, item_id, count(i) AS found
RETURN users, collect(CASE WHEN found = 0 THEN item_id END) AS missing_items
