// Mark items retired (kgrec items retire): `retired: true` on each :Item, so analysts see
// which items serving no longer recommends. Their interactions and served records stay.
// Parameters: $ids (list of item ids). Returns how many items were found.
UNWIND $ids AS id
MATCH (i:Item {id: id})
SET i.retired = true
RETURN count(i) AS items
