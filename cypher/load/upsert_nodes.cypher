// Upsert a batch of nodes of one label: re-running with the same rows changes nothing.
// Parameters: $rows = [{id: string, props: map}, ...]
// __LABEL__ is replaced by a label that kgrec has checked against ^[A-Za-z][A-Za-z0-9_]*$.
UNWIND $rows AS row
MERGE (n:__LABEL__ {id: row.id})
SET n += row.props
