//! Saved list views: a key user's named columns and filters of one list.
use super::sql::IntoVal;
use super::{Result, Store};

/// A saved view as the list's picker shows it.
#[derive(Debug, Clone)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
}

impl Store {
    /// A key user's views of one list, by name.
    pub async fn list_views(&self, key_user_id: i64, list_key: &str) -> Result<Vec<SavedView>> {
        let rows: Vec<(i64, String)> = self.rows(
            "SELECT id, name FROM list_views WHERE key_user_id = $1 AND list_key = $2 ORDER BY name",
            &[key_user_id.into_val(), list_key.into_val()],
        ).await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| SavedView { id, name })
            .collect())
    }

    /// The columns and query of one of a key user's views of a list.
    pub async fn list_view(
        &self,
        id: i64,
        key_user_id: i64,
        list_key: &str,
    ) -> Result<Option<(String, String)>> {
        self.opt(
            "SELECT columns, query FROM list_views WHERE id = $1 AND key_user_id = $2 AND list_key = $3",
            &[id.into_val(), key_user_id.into_val(), list_key.into_val()],
        ).await
    }

    /// Saves (or replaces, by name) a view; returns its id.
    pub async fn save_list_view(
        &self,
        key_user_id: i64,
        list_key: &str,
        name: &str,
        columns: &str,
        query: &str,
    ) -> Result<i64> {
        let (id,): (i64,) = self.one(
            "INSERT INTO list_views (key_user_id, list_key, name, columns, query) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key_user_id, list_key, name) DO UPDATE SET columns = EXCLUDED.columns, query = EXCLUDED.query \
             RETURNING id",
            &[key_user_id.into_val(), list_key.into_val(), name.into_val(), columns.into_val(), query.into_val()],
        )
        .await?;
        Ok(id)
    }
}
