-- fieldsync: price list default (PostgreSQL). Never edit once landed; add a new file instead.

-- The price list new outlets get (chosen on a price list's card in the back office); NULL:
-- the distributor's first price list, as before.
ALTER TABLE distributors ADD COLUMN default_price_list_id BIGINT REFERENCES price_lists(id);
