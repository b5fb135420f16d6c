//! Price lists (the key-user manual's «Формы оплаты») and their prices as key users keep
//! them: create a price list, rename it, change its payment form, make it the distributor's
//! default for new outlets, set one product's price, remove a price. Every change reaches
//! the phones with their next pull (the change log, scope 0: every phone of the distributor;
//! a removed price as a tombstone).
use fieldsync_protocol::v1::EntityKind;

use super::sql::{IntoVal, Val, exec_on, id_on, one_on};
use super::world::{ChangeRef, commit_changes};
use super::{Problem, Result, Store, StoreError, WriteTx};

/// The payment forms a price list can have, as stored and sent to the phones.
pub const PAYMENT_FORMS: &[&str] = &["cash", "credit", "bank_transfer"];

/// The longest price list name accepted.
pub const MAX_NAME_CHARS: usize = 120;

/// A price list as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceListHead {
    pub id: i64,
    pub distributor_id: i64,
    pub distributor: String,
    pub name: String,
    pub payment_form: String,
    /// New outlets (by import or in the back office) get this price list.
    pub is_default: bool,
    /// Outlets that order on it.
    pub outlets: i64,
    pub prices: i64,
}

/// One price of a price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceLine {
    /// The price's own id (a product may have several prices, from different days).
    pub id: i64,
    pub product_id: i64,
    pub code: String,
    pub name: String,
    pub price_minor: i64,
    /// `YYYY-MM-DD`; empty: since always.
    pub valid_from: String,
}

type PriceLineRow = (i64, i64, String, String, i64, String);

impl From<PriceLineRow> for PriceLine {
    fn from((id, product_id, code, name, price_minor, valid_from): PriceLineRow) -> Self {
        PriceLine {
            id,
            product_id,
            code,
            name,
            price_minor,
            valid_from,
        }
    }
}

/// What a key user enters for a price list.
#[derive(Debug, Clone)]
pub struct PriceListForm<'a> {
    pub name: &'a str,
    pub payment_form: &'a str,
}

impl PriceListForm<'_> {
    /// The trimmed name, or the problem with the form.
    fn checked(&self) -> Result<String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(StoreError::Refused(Problem::PriceListName));
        }
        if !PAYMENT_FORMS.contains(&self.payment_form) {
            return Err(StoreError::Refused(Problem::PaymentForm));
        }
        Ok(name.to_string())
    }
}

impl Store {
    /// A price list's card, if it exists.
    pub async fn price_list_head(&self, id: i64) -> Result<Option<PriceListHead>> {
        let row: Option<(i64, String, String, String, i64, i64, i64)> = self
            .opt(
                "SELECT pl.distributor_id, d.code, pl.name, pl.payment_form,
                        CASE WHEN d.default_price_list_id = pl.id THEN 1 ELSE 0 END,
                        (SELECT COUNT(*) FROM outlets o WHERE o.price_list_id = pl.id AND o.deleted = 0),
                        (SELECT COUNT(*) FROM prices pr WHERE pr.price_list_id = pl.id)
                 FROM price_lists pl JOIN distributors d ON d.id = pl.distributor_id
                 WHERE pl.id = $1",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(
            |(distributor_id, distributor, name, payment_form, is_default, outlets, prices)| {
                PriceListHead {
                    id,
                    distributor_id,
                    distributor,
                    name,
                    payment_form,
                    is_default: is_default != 0,
                    outlets,
                    prices,
                }
            },
        ))
    }

    /// The first `limit` prices of a price list, by product code.
    pub async fn price_list_lines(&self, id: i64, limit: i64) -> Result<Vec<PriceLine>> {
        let rows: Vec<PriceLineRow> = self
            .rows(
                "SELECT pr.id, p.id, p.code, p.name, pr.price_minor, pr.valid_from
                 FROM prices pr JOIN products p ON p.id = pr.product_id
                 WHERE pr.price_list_id = $1 AND p.deleted = 0
                 ORDER BY p.code, pr.valid_from LIMIT $2",
                &[id.into_val(), limit.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(PriceLine::from).collect())
    }

    /// Creates a price list (`id` None) or changes one of `distributor_id`; names are unique
    /// per distributor (imports name price lists), checked and written in one transaction
    /// that concurrent writers of the distributor's master data wait for. Returns the id.
    pub async fn save_price_list(
        &self,
        distributor_id: i64,
        id: Option<i64>,
        form: &PriceListForm<'_>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let (id, change) = save_price_list_on(&mut tx, distributor_id, id, form).await?;
        commit_changes(tx, distributor_id, &[change]).await?;
        Ok(id)
    }

    /// Makes a price list of `distributor_id` the one new outlets get.
    pub async fn set_default_price_list(&self, distributor_id: i64, id: i64) -> Result<()> {
        let changed = self
            .exec(
                "UPDATE distributors SET default_price_list_id = $2 WHERE id = $1
                 AND EXISTS (SELECT 1 FROM price_lists WHERE id = $2 AND distributor_id = $1)",
                &[distributor_id.into_val(), id.into_val()],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets the price of the product with `product_code` in a price list of
    /// `distributor_id` from `valid_from` (`YYYY-MM-DD`; empty: since always) on; returns the
    /// product's id.
    pub async fn set_price_by_code(
        &self,
        distributor_id: i64,
        price_list_id: i64,
        product_code: &str,
        price_minor: i64,
        valid_from: &str,
    ) -> Result<i64> {
        let valid_from = valid_from.trim();
        if price_minor < 0 {
            return Err(StoreError::Refused(Problem::BadPrice));
        }
        if !valid_from.is_empty() && !fieldsync_protocol::dates::is_date(valid_from) {
            return Err(StoreError::Refused(Problem::BadValidFrom));
        }
        let mut tx = self.begin_write().await?;
        let product = owned_product(&mut tx, distributor_id, price_list_id, product_code).await?;
        let id = id_on(
            &mut tx,
            "INSERT INTO prices (price_list_id, product_id, price_minor, valid_from) VALUES ($1, $2, $3, $4)
             ON CONFLICT (price_list_id, product_id, valid_from) DO UPDATE SET price_minor = excluded.price_minor
             RETURNING id",
            &[
                Val::I(price_list_id),
                Val::I(product),
                Val::I(price_minor),
                Val::S(valid_from.to_string()),
            ],
        )
        .await?;
        let change = ChangeRef::upsert(EntityKind::Price, id, 0);
        commit_changes(tx, distributor_id, &[change]).await?;
        Ok(product)
    }

    /// Removes the price `price_id` (one product's price from one day) from a price list of
    /// `distributor_id`: the phones drop it with their next pull. False when there was none.
    pub async fn remove_price(
        &self,
        distributor_id: i64,
        price_list_id: i64,
        price_id: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (found,): (Option<i64>,) = one_on(
            &mut tx,
            "SELECT MAX(pr.id) FROM prices pr JOIN price_lists pl ON pl.id = pr.price_list_id
             WHERE pr.price_list_id = $1 AND pr.id = $2 AND pl.distributor_id = $3",
            &[
                Val::I(price_list_id),
                Val::I(price_id),
                Val::I(distributor_id),
            ],
        )
        .await?;
        let Some(id) = found else {
            return Ok(false);
        };
        exec_on(&mut tx, "DELETE FROM prices WHERE id = $1", &[Val::I(id)]).await?;
        let change = ChangeRef::delete(EntityKind::Price, id, 0);
        commit_changes(tx, distributor_id, &[change]).await?;
        Ok(true)
    }
}

/// Creates or changes a price list in `tx` (see [`Store::save_price_list`]); the caller has
/// taken the distributor's turn and records the returned change. A refusal comes before
/// anything is written.
pub(crate) async fn save_price_list_on(
    tx: &mut WriteTx,
    distributor_id: i64,
    id: Option<i64>,
    form: &PriceListForm<'_>,
) -> Result<(i64, ChangeRef)> {
    let name = form.checked()?;
    let (taken,): (i64,) = one_on(
        tx,
        "SELECT COUNT(*) FROM price_lists WHERE distributor_id = $1 AND name = $2 AND id <> $3",
        &[
            Val::I(distributor_id),
            Val::S(name.clone()),
            Val::I(id.unwrap_or(0)),
        ],
    )
    .await?;
    if taken > 0 {
        return Err(StoreError::Refused(Problem::PriceListNameTaken));
    }
    let payment_form = form.payment_form.to_string();
    let id = match id {
        None => {
            id_on(
                tx,
                "INSERT INTO price_lists (distributor_id, name, payment_form) VALUES ($1, $2, $3) RETURNING id",
                &[Val::I(distributor_id), Val::S(name), Val::S(payment_form)],
            )
            .await?
        }
        Some(id) => {
            let changed = exec_on(
                tx,
                "UPDATE price_lists SET name = $2, payment_form = $3 WHERE distributor_id = $1 AND id = $4",
                &[
                    Val::I(distributor_id),
                    Val::S(name),
                    Val::S(payment_form),
                    Val::I(id),
                ],
            )
            .await?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            id
        }
    };
    Ok((id, ChangeRef::upsert(EntityKind::PriceList, id, 0)))
}

/// The id of the live product `code` of the distributor that owns `price_list_id`.
async fn owned_product(
    tx: &mut WriteTx,
    distributor_id: i64,
    price_list_id: i64,
    code: &str,
) -> Result<i64> {
    let found: Vec<(i64,)> = sqlx::query_as(
        "SELECT p.id FROM products p JOIN price_lists pl ON pl.distributor_id = p.distributor_id
         WHERE pl.id = $1 AND pl.distributor_id = $2 AND p.code = $3 AND p.deleted = 0",
    )
    .bind(price_list_id)
    .bind(distributor_id)
    .bind(code.trim())
    .fetch_all(&mut **tx)
    .await?;
    match found.first() {
        Some((id,)) => Ok(*id),
        None => Err(StoreError::Refused(Problem::UnknownProduct)),
    }
}
