// An index on the server time of each recorded recommendation, so a rebuild finds the records
// written while it copied the others (load/served_since.cypher) without scanning them all.
CREATE INDEX FOR ()-[r:RECOMMENDED]-() ON (r.ts)
