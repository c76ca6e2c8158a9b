// How many of the given users the graph holds (kgrec users forget checks what it deletes).
// Parameters: $ids (list of user ids).
MATCH (u:User)
WHERE u.id IN $ids
RETURN count(u) AS users
