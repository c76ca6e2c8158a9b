// Undo kgrec items retire: remove the `retired` property of each :Item (setting a property
// to null removes it, in FalkorDB and Neo4j alike).
// Parameters: $ids (list of item ids). Returns how many items were found.
UNWIND $ids AS id
MATCH (i:Item {id: id})
SET i.retired = null
RETURN count(i) AS items
