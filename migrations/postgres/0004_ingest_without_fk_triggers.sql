-- fieldsync: push ingest without foreign-key triggers on visits and orders (PostgreSQL).
-- Never edit once landed; add a new file instead.
--
-- Every reference of a visit or an order (distributor, device, mobile user, position, outlet,
-- visit, price list, warehouse) is validated by push ingest in the same transaction that
-- writes it, and none of the referenced rows is ever deleted (master data is soft-deleted).
-- The triggers re-checked each of them once per row: 13 checks per typical visit with an
-- order, each taking a KEY SHARE lock on rows every agent of a distributor shares (its
-- distributor row), which turned concurrent pushes into multixact traffic. Detail rows
-- (gps_fixes, order_lines, ...) already carry no foreign keys for the same reason.
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_distributor_id_fkey;
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_device_id_fkey;
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_mobile_user_id_fkey;
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_position_id_fkey;
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_outlet_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_distributor_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_device_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_mobile_user_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_position_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_visit_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_outlet_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_price_list_id_fkey;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_warehouse_id_fkey;
