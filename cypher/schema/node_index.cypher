// Index on the `id` of one node label (FalkorDB syntax; run once per label before loading).
// __LABEL__ is replaced by a label that kgrec has checked against ^[A-Za-z][A-Za-z0-9_]*$.
CREATE INDEX FOR (n:__LABEL__) ON (n.id)
