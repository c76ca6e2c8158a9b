// How many items the graph holds (kgrec add-items checks the dataset was loaded first).
// Parameters: none
MATCH (i:Item)
RETURN count(i) AS items
