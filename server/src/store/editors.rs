//! What the back office's one-at-a-time editors need around the shared writes: an outlet
//! created or edited by a key user goes through the same patch an import row does
//! ([`Store::upsert_outlets`], [`Store::upsert_products`]; a new item in
//! [`PatchMode::CreateOnly`]), so a territory move leaves its
//! tombstone for the old territory's phones and what the form does not show (the reference
//! location, the mapping) stays as stored.
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::IntoVal;
use futures::future::OptionFuture;

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
}

/// A product as its edit form shows and sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductForm {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub category: String,
    pub must_stock: bool,
}

/// What every editor's form has: a code (typed for a new item) and a name.
pub trait Coded {
    fn code(&self) -> &str;
    fn name(&self) -> &str;
}

impl Coded for OutletForm {
    fn code(&self) -> &str {
        &self.code
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Coded for ProductForm {
    fn code(&self) -> &str {
        &self.code
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// The code and name an edit saves: a stored item keeps its code (`stored` is the lookup of
/// the item being edited, with its distributor), a new one takes the form's; both checked,
/// `problem` when they do not do.
fn code_and_name<F: Coded>(
    distributor_id: i64,
    stored: Option<Result<Option<(i64, F)>>>,
    form: &F,
    problem: Problem,
) -> Result<(String, String)> {
    let code = match stored.transpose()? {
        Some(Some((d, item))) if d == distributor_id => item.code().to_string(),
        Some(_) => return Err(StoreError::NotFound),
        None => form.code().trim().to_string(),
    };
    let name = form.name().trim().to_string();
    let bad = |s: &str, max: usize| s.is_empty() || s.chars().count() > max;
    if bad(&code, MAX_CODE_CHARS)
        || code.chars().any(char::is_whitespace)
        || bad(&name, MAX_NAME_CHARS)
    {
        return Err(StoreError::Refused(problem));
    }
    Ok((code, name))
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
                        territory_id, price_list_id
                 FROM outlets WHERE id = $1 AND deleted = 0",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|e| (e.distributor_id, e.form)))
    }

    /// Creates an outlet (`existing` None) or changes the live outlet `existing` of the
    /// distributor, as one import row that names every field of the form would; returns its
    /// id. The code of an existing outlet does not change.
    pub async fn save_outlet(
        &self,
        distributor_id: i64,
        existing: Option<i64>,
        form: &OutletForm,
    ) -> Result<i64> {
        let stored = OptionFuture::from(existing.map(|id| self.outlet_form(id))).await;
        let (code, name) = code_and_name(distributor_id, stored, form, Problem::OutletCodeOrName)?;
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
        self.one_id(by_code, &[distributor_id.into_val(), code.into_val()])
            .await
    }

    /// A live product's distributor and what its edit form shows.
    pub async fn product_form(&self, id: i64) -> Result<Option<(i64, ProductForm)>> {
        let row: Option<(i64, String, String, String, String, i64)> = self
            .opt(
                "SELECT distributor_id, code, name, unit, category, must_stock
                 FROM products WHERE id = $1 AND deleted = 0",
                &[id.into_val()],
            )
            .await?;
        Ok(row.map(|(d, code, name, unit, category, must)| {
            let must_stock = must != 0;
            let form = ProductForm {
                code,
                name,
                unit,
                category,
                must_stock,
            };
            (d, form)
        }))
    }

    /// Creates a product (`existing` None) or changes the live product `existing` of the
    /// distributor, as one import row naming every field would; returns its id. Phones get
    /// it with their next pull.
    pub async fn save_product(
        &self,
        distributor_id: i64,
        existing: Option<i64>,
        form: &ProductForm,
    ) -> Result<i64> {
        let stored = OptionFuture::from(existing.map(|id| self.product_form(id))).await;
        let (code, name) = code_and_name(distributor_id, stored, form, Problem::ProductCodeOrName)?;
        let patch = ProductPatch {
            code: code.clone(),
            name,
            unit: Some(form.unit.trim().to_string()),
            category: Some(form.category.trim().to_string()),
            must_stock: Some(form.must_stock),
        };
        self.upsert_products(distributor_id, &[patch], mode(existing))
            .await?;
        let by_code = "SELECT id FROM products WHERE distributor_id = $1 AND code = $2";
        self.one_id(by_code, &[distributor_id.into_val(), code.into_val()])
            .await
    }
}
