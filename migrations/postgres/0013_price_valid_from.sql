-- fieldsync: a price is valid from a date (PostgreSQL). Never edit once landed; add a new file instead.

-- A product may have several prices in one price list, each from its own first day
-- (valid_from, 'YYYY-MM-DD'; '' = since always): the price in force on a day is the one with
-- the latest valid_from not after that day.
ALTER TABLE prices ADD COLUMN valid_from TEXT NOT NULL DEFAULT '';
ALTER TABLE prices DROP CONSTRAINT prices_price_list_id_product_id_key;
ALTER TABLE prices ADD CONSTRAINT prices_key UNIQUE (price_list_id, product_id, valid_from);
