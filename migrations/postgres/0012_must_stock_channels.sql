-- fieldsync: must-stock products per outlet channel (PostgreSQL). Never edit once landed; add a new file instead.

-- The channels (outlets.channel, free text per distributor, matched exactly) for which a
-- must-stock product is checked on the shelf. A product with must_stock = 1 and no rows here
-- is must-stock at every channel, as before this table; rows of a product with
-- must_stock = 0 are never kept.
CREATE TABLE product_must_stock_channels (
    product_id BIGINT NOT NULL REFERENCES products(id),
    channel    TEXT NOT NULL,
    PRIMARY KEY (product_id, channel)
);
