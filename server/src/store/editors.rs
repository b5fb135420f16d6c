//! What the back office's one-at-a-time editors need around the shared writes: an outlet
//! created or edited by a key user goes through the same patch an import row does
//! ([`Store::upsert_outlets`], [`Store::upsert_products`]; a new item in
//! [`PatchMode::CreateOnly`]), so a territory move leaves its
//! tombstone for the old territory's phones and what the form does not show (the reference
//! location, the mapping) stays as stored.
//!
//! Global (brand) records: only the head office marks an outlet or a product global or local
//! and changes a global one (`may_keep_globals`, [`SessionUser::may_keep_globals`]); a
//! distributor's key user keeps local records only ([`Problem::GlobalsHeadOfficeOnly`]). A
//! record marked global keeps no mapping of its own and needs a code no other global record
//! of its kind has ([`Problem::GlobalCodeTaken`]: a mapping names the global one by code). A
//! global record that live local records are mapped to stays global
//! ([`Problem::GlobalStillMapped`] says how many): unmarking it never breaks a mapping.
//!
//! [`SessionUser::may_keep_globals`]: super::keyusers::SessionUser::may_keep_globals
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{IntoVal, exec_on};
use futures::future::OptionFuture;

use super::cards::Mapped;
use super::world::{OutletPatch, PatchMode, ProductPatch};
use super::{Problem, Result, Store, StoreError};

/// The longest outlet code and name accepted.
pub const MAX_CODE_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;

/// An outlet as its edit form shows and sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutletForm {
    pub code: String,
    pub name: String,
    pub address: String,
    pub contact_name: String,
    pub phone: String,
    pub channel: String,
    pub territory_id: Option<i64>,
    pub price_list_id: Option<i64>,
    /// A global (brand) outlet rather than a distributor's local one.
    pub is_global: bool,
}

/// A product as its edit form shows and sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductForm {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub category: String,
    pub must_stock: bool,
    /// The outlet channels it is must-stock for; none: every channel.
    pub must_stock_channels: Vec<String>,
    /// A global (brand) product rather than a distributor's local one.
    pub is_global: bool,
}

/// What every editor's form has: a code (typed for a new item), a name and whether it is
/// global.
pub trait Coded {
    fn code(&self) -> &str;
    fn name(&self) -> &str;
    fn is_global(&self) -> bool;
}

impl Coded for OutletForm {
    fn code(&self) -> &str {
        &self.code
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn is_global(&self) -> bool {
        self.is_global
    }
}

impl Coded for ProductForm {
    fn code(&self) -> &str {
        &self.code
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn is_global(&self) -> bool {
        self.is_global
    }
}

/// What an edit saves: the code and name (a stored item keeps its code, `stored` being the
/// lookup of the item being edited with its distributor, a new one takes the form's; both
/// checked, `problem` when they do not do) and whether the stored item was global. Without
/// `may_keep_globals`, a global item and a change of marking are refused.
fn code_and_name<F: Coded>(
    distributor_id: i64,
    stored: Option<Result<Option<(i64, F)>>>,
    form: &F,
    problem: Problem,
    may_keep_globals: bool,
) -> Result<(String, String, bool)> {
    let (code, was_global) = match stored.transpose()? {
        Some(Some((d, item))) if d == distributor_id => (item.code().to_string(), item.is_global()),
        Some(_) => return Err(StoreError::NotFound),
        None => (form.code().trim().to_string(), false),
    };
    if !may_keep_globals && (was_global || form.is_global()) {
        return Err(StoreError::Refused(Problem::GlobalsHeadOfficeOnly));
    }
    let name = form.name().trim().to_string();
    let bad = |s: &str, max: usize| s.is_empty() || s.chars().count() > max;
    if bad(&code, MAX_CODE_CHARS)
        || code.chars().any(char::is_whitespace)
        || bad(&name, MAX_NAME_CHARS)
    {
        return Err(StoreError::Refused(problem));
    }
    Ok((code, name, was_global))
}

/// How an editor's save applies: a new item only when there is no `existing` one.
fn mode(existing: Option<i64>) -> PatchMode {
    match existing {
        Some(_) => PatchMode::Apply,
        None => PatchMode::CreateOnly,
    }
}

/// An outlet's form with its distributor, read by column name.
struct Editable {
    distributor_id: i64,
    form: OutletForm,
}

impl sqlx::FromRow<'_, AnyRow> for Editable {
    fn from_row(row: &AnyRow) -> sqlx::Result<Self> {
        let text = |c: &str| row.try_get::<String, _>(c);
        let form = OutletForm {
            code: text("code")?,
            name: text("name")?,
            address: text("address")?,
            contact_name: text("contact_name")?,
            phone: text("phone")?,
            channel: text("channel")?,
            territory_id: row.try_get("territory_id")?,
            price_list_id: row.try_get("price_list_id")?,
            is_global: row.try_get::<i64, _>("is_global")? != 0,
        };
        let distributor_id = row.try_get("distributor_id")?;
        Ok(Editable {
            distributor_id,
            form,
        })
    }
}

/// The price list a new outlet of the distributor `$1` gets: its default, else its first.
pub(crate) const DEFAULT_PRICE_LIST: &str = "SELECT COALESCE(
     (SELECT default_price_list_id FROM distributors WHERE id = $1),
     (SELECT MIN(id) FROM price_lists WHERE distributor_id = $1))";

/// What an editor offers to pick from: (id, name).
pub type Choices = Vec<(i64, String)>;

impl Store {
    /// The distributor's territories, by name.
    pub async fn territory_choices(&self, distributor_id: i64) -> Result<Choices> {
        self.rows(
            "SELECT id, name FROM org_units WHERE distributor_id = $1 AND kind = 'territory' ORDER BY name, id",
            &[distributor_id.into_val()],
        )
        .await
    }

    /// The distributor's price lists, by name.
    pub async fn price_list_choices(&self, distributor_id: i64) -> Result<Choices> {
        self.rows(
            "SELECT id, name FROM price_lists WHERE distributor_id = $1 ORDER BY name, id",
            &[distributor_id.into_val()],
        )
        .await
    }

    /// The price list a new outlet of the distributor gets.
    pub async fn default_price_list(&self, distributor_id: i64) -> Result<Option<i64>> {
        let (id,): (Option<i64>,) = self
            .one(DEFAULT_PRICE_LIST, &[distributor_id.into_val()])
            .await?;
        Ok(id)
    }

    /// A live outlet's distributor and what its edit form shows.
    pub async fn outlet_form(&self, id: i64) -> Result<Option<(i64, OutletForm)>> {
        let row: Option<Editable> = self
            .opt(
                "SELECT distributor_id, code, name, address, contact_name, phone, channel,
                        territory_id, price_list_id, is_global
                 FROM outlets WHERE id = $1 AND deleted = 0",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|e| (e.distributor_id, e.form)))
    }

    /// Creates a local outlet (`existing` None) or changes the live local outlet `existing`
    /// of the distributor, as a key user does ([`Store::save_outlet_as`] without keeping
    /// globals).
    pub async fn save_outlet(
        &self,
        distributor_id: i64,
        existing: Option<i64>,
        form: &OutletForm,
    ) -> Result<i64> {
        self.save_outlet_as(false, distributor_id, existing, form)
            .await
    }

    /// Creates an outlet (`existing` None) or changes the live outlet `existing` of the
    /// distributor, as one import row that names every field of the form would, then marks
    /// it global or local as the form says (see the module's rules; `may_keep_globals`: the
    /// head office saves); returns its id. The code of an existing outlet does not change.
    pub async fn save_outlet_as(
        &self,
        may_keep_globals: bool,
        distributor_id: i64,
        existing: Option<i64>,
        form: &OutletForm,
    ) -> Result<i64> {
        let stored = OptionFuture::from(existing.map(|id| self.outlet_form(id))).await;
        let (code, name, was_global) = code_and_name(
            distributor_id,
            stored,
            form,
            Problem::OutletCodeOrName,
            may_keep_globals,
        )?;
        let marking = (existing, was_global, form.is_global);
        self.check_marking(Mapped::Outlet, &code, marking).await?;
        let owned = |choices: &Choices, id: Option<i64>| {
            id.is_none_or(|id| choices.iter().any(|(c, _)| *c == id))
        };
        if !owned(
            &self.territory_choices(distributor_id).await?,
            form.territory_id,
        ) {
            return Err(StoreError::Refused(Problem::UnknownTerritory));
        }
        if !owned(
            &self.price_list_choices(distributor_id).await?,
            form.price_list_id,
        ) {
            return Err(StoreError::Refused(Problem::UnknownPriceList));
        }
        let text = |s: &str| Some(s.trim().to_string());
        let patch = OutletPatch {
            code: code.clone(),
            name,
            address: text(&form.address),
            contact_name: text(&form.contact_name),
            phone: text(&form.phone),
            channel: text(&form.channel),
            territory_id: Some(form.territory_id),
            // The reference location has its own form on the card.
            location: None,
            price_list_id: Some(form.price_list_id),
        };
        self.upsert_outlets(distributor_id, &[patch], mode(existing))
            .await?;
        let by_code = "SELECT id FROM outlets WHERE distributor_id = $1 AND code = $2";
        let id = self
            .one_id(by_code, &[distributor_id.into_val(), code.into_val()])
            .await?;
        self.mark(Mapped::Outlet, id, was_global, form.is_global)
            .await?;
        Ok(id)
    }

    /// A live product's distributor and what its edit form shows.
    pub async fn product_form(&self, id: i64) -> Result<Option<(i64, ProductForm)>> {
        let row: Option<(i64, String, String, String, String, i64, i64)> = self
            .opt(
                "SELECT distributor_id, code, name, unit, category, must_stock, is_global
                 FROM products WHERE id = $1 AND deleted = 0",
                &[id.into_val()],
            )
            .await?;
        let Some((d, code, name, unit, category, must, global)) = row else {
            return Ok(None);
        };
        let form = ProductForm {
            code,
            name,
            unit,
            category,
            must_stock: must != 0,
            must_stock_channels: self.product_must_stock_channels(id).await?,
            is_global: global != 0,
        };
        Ok(Some((d, form)))
    }

    /// The outlet channels product `id` is must-stock for, sorted; none: every channel.
    pub async fn product_must_stock_channels(&self, id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                "SELECT channel FROM product_must_stock_channels WHERE product_id = $1 ORDER BY channel",
                &[id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The channels a product of the distributor can be must-stock for: those of its live
    /// outlets and those its products already name, sorted, the first 200 (the form also takes
    /// typed ones).
    pub async fn must_stock_channel_choices(&self, distributor_id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                "SELECT channel FROM outlets WHERE distributor_id = $1 AND deleted = 0 AND channel <> ''
                 UNION
                 SELECT c.channel FROM product_must_stock_channels c JOIN products p ON p.id = c.product_id
                 WHERE p.distributor_id = $1
                 ORDER BY 1 LIMIT 200",
                &[distributor_id.into_val()],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Creates a local product (`existing` None) or changes the live local product
    /// `existing` of the distributor, as a key user does ([`Store::save_product_as`] without
    /// keeping globals).
    pub async fn save_product(
        &self,
        distributor_id: i64,
        existing: Option<i64>,
        form: &ProductForm,
    ) -> Result<i64> {
        self.save_product_as(false, distributor_id, existing, form)
            .await
    }

    /// Creates a product (`existing` None) or changes the live product `existing` of the
    /// distributor, as one import row naming every field would, then marks it global or
    /// local as the form says (see the module's rules); returns its id. Phones get it with
    /// their next pull.
    pub async fn save_product_as(
        &self,
        may_keep_globals: bool,
        distributor_id: i64,
        existing: Option<i64>,
        form: &ProductForm,
    ) -> Result<i64> {
        let stored = OptionFuture::from(existing.map(|id| self.product_form(id))).await;
        let (code, name, was_global) = code_and_name(
            distributor_id,
            stored,
            form,
            Problem::ProductCodeOrName,
            may_keep_globals,
        )?;
        let marking = (existing, was_global, form.is_global);
        self.check_marking(Mapped::Product, &code, marking).await?;
        let patch = ProductPatch {
            code: code.clone(),
            name,
            unit: Some(form.unit.trim().to_string()),
            category: Some(form.category.trim().to_string()),
            // The form has no brand: the stored one stays (imports set it).
            brand: None,
            must_stock: Some(form.must_stock),
            must_stock_channels: Some(
                super::world::checked_must_stock_channels(&form.must_stock_channels)
                    .map_err(StoreError::Refused)?,
            ),
        };
        self.upsert_products(distributor_id, &[patch], mode(existing))
            .await?;
        let by_code = "SELECT id FROM products WHERE distributor_id = $1 AND code = $2";
        let id = self
            .one_id(by_code, &[distributor_id.into_val(), code.into_val()])
            .await?;
        self.mark(Mapped::Product, id, was_global, form.is_global)
            .await?;
        Ok(id)
    }

    /// Live local records of `kind` mapped to the global record `id`.
    pub async fn mapped_to(&self, kind: Mapped, id: i64) -> Result<i64> {
        let (n,): (i64,) = self.one(marking_sql(kind).mapped, &[id.into_val()]).await?;
        Ok(n)
    }

    /// Refuses, before anything is written, a marking `(existing, was_global, is_global)`
    /// that does not hold: a code another global record has, or unmarking a global record
    /// that local records are mapped to.
    async fn check_marking(
        &self,
        kind: Mapped,
        code: &str,
        (existing, was_global, is_global): (Option<i64>, bool, bool),
    ) -> Result<()> {
        if is_global && !was_global {
            let (n,): (i64,) = self
                .one(marking_sql(kind).code_taken, &[code.into_val()])
                .await?;
            if n > 0 {
                return Err(StoreError::Refused(Problem::GlobalCodeTaken));
            }
        }
        if let (Some(id), true, false) = (existing, was_global, is_global) {
            let n = self.mapped_to(kind, id).await?;
            if n > 0 {
                return Err(StoreError::Refused(Problem::GlobalStillMapped(n)));
            }
        }
        Ok(())
    }

    /// Marks the record `id` of `kind` global (it keeps no mapping of its own) or local (one
    /// statement decides that no live local record is mapped to it, and the deleted ones
    /// that were lose their mapping), when that changes.
    async fn mark(&self, kind: Mapped, id: i64, was_global: bool, is_global: bool) -> Result<()> {
        if is_global == was_global {
            return Ok(());
        }
        let sql = marking_sql(kind);
        let key = [id.into_val()];
        let mut tx = self.begin_write().await?;
        if is_global {
            exec_on(&mut tx, sql.global, &key).await?;
        } else if exec_on(&mut tx, sql.local, &key).await? == 0 {
            drop(tx);
            let n = self.mapped_to(kind, id).await?;
            return Err(StoreError::Refused(Problem::GlobalStillMapped(n)));
        } else {
            exec_on(&mut tx, sql.unmap_deleted, &key).await?;
        }
        tx.commit().await
    }
}

/// The statements that mark a record of one kind global or local (`$1`: its id, or its code
/// for `code_taken`).
struct MarkingSql {
    mapped: &'static str,
    code_taken: &'static str,
    global: &'static str,
    local: &'static str,
    unmap_deleted: &'static str,
}

macro_rules! marking_sql {
    ($table:literal, $column:literal) => {
        MarkingSql {
            mapped: concat!(
                "SELECT COUNT(*) FROM ",
                $table,
                " WHERE ",
                $column,
                " = $1 AND deleted = 0"
            ),
            code_taken: concat!(
                "SELECT COUNT(*) FROM ",
                $table,
                " WHERE code = $1 AND is_global = 1 AND deleted = 0"
            ),
            global: concat!(
                "UPDATE ",
                $table,
                " SET is_global = 1, ",
                $column,
                " = NULL WHERE id = $1"
            ),
            local: concat!(
                "UPDATE ",
                $table,
                " SET is_global = 0 WHERE id = $1 AND NOT EXISTS ",
                "(SELECT 1 FROM ",
                $table,
                " l WHERE l.",
                $column,
                " = $1 AND l.deleted = 0)"
            ),
            unmap_deleted: concat!(
                "UPDATE ",
                $table,
                " SET ",
                $column,
                " = NULL WHERE ",
                $column,
                " = $1"
            ),
        }
    };
}

fn marking_sql(kind: Mapped) -> MarkingSql {
    match kind {
        Mapped::Outlet => marking_sql!("outlets", "global_outlet_id"),
        Mapped::Product => marking_sql!("products", "global_product_id"),
    }
}
