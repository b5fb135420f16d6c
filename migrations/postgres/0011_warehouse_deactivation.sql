-- fieldsync: warehouses deactivated in the back office, and the week plan's look-up of visits by
-- route (PostgreSQL). Never edit once landed; add a new file instead.

-- A deactivated warehouse keeps its bindings and its orders; while it is inactive the phones of
-- its positions do not hold it (a tombstone each) and a pushed order from it is refused as from
-- an unbound one. Reactivating it sends it to the bound positions' phones again.
ALTER TABLE warehouses ADD COLUMN active INTEGER NOT NULL DEFAULT 1;

-- A week plan never replaces a route that has visits: one look-up per generated date.
CREATE INDEX visits_route ON visits (route_id) WHERE route_id IS NOT NULL;
