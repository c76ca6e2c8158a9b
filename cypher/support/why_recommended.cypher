// name: why_recommended
// purpose: Why an item was recommended to a user, one row per reason, newest recording
//   first: when it was served, at which rank, the item's title, the reason (the sentence the
//   customer may read: it cites only items the user liked and names no other user), its
//   share of the score (0-1), the score, the model and the request. A recording without
//   reasons gives one row whose reason and share are null. `kgrec explain --served` shows
//   the same reasons with their graph paths.
// params: user (string, e.g. "u0001"),
//   item (string, e.g. "i0042"),
//   model_id (string, default null, only this model's recommendations; null: any model)
// example: kgrec cypher run why_recommended -p user=u0001 -p item=i0042
MATCH (u:User {id: $user})-[r:RECOMMENDED]->(i:Item {id: $item})
WHERE $model_id IS NULL OR r.model_id = $model_id
WITH r, i, coalesce(r.reasons, []) AS reasons, coalesce(r.shares, []) AS shares
UNWIND CASE WHEN size(reasons) = 0 THEN [null] ELSE range(0, size(reasons) - 1) END AS k
RETURN r.at AS at, r.rank AS rank, i.title AS title, reasons[k] AS reason, shares[k] AS share,
       r.score AS score, r.model_id AS model_id, r.request_id AS request_id
ORDER BY at DESC, request_id, rank, share DESC
