"""Neural components: the :class:`~kgrec.nn.model.KGRec` GNN and its losses."""
