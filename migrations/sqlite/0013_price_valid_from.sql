-- fieldsync: a price is valid from a date (SQLite). Never edit once landed; add a new file instead.

-- A product may have several prices in one price list, each from its own first day
-- (valid_from, 'YYYY-MM-DD'; '' = since always): the price in force on a day is the one with
-- the latest valid_from not after that day. SQLite cannot drop the old UNIQUE
-- (price_list_id, product_id), so the table is rebuilt with its ids (the change log and the
-- phones name prices by id). No table references prices.
CREATE TABLE prices_dated (
    id            INTEGER PRIMARY KEY,
    price_list_id INTEGER NOT NULL REFERENCES price_lists(id),
    product_id    INTEGER NOT NULL REFERENCES products(id),
    price_minor   INTEGER NOT NULL,
    valid_from    TEXT NOT NULL DEFAULT '',
    UNIQUE (price_list_id, product_id, valid_from)
);
INSERT INTO prices_dated (id, price_list_id, product_id, price_minor)
    SELECT id, price_list_id, product_id, price_minor FROM prices;
DROP TABLE prices;
ALTER TABLE prices_dated RENAME TO prices;
