//! Saved list views: a key user's named columns and filters of one list.
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
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM list_views WHERE key_user_id = $1 AND list_key = $2 ORDER BY name",
        )
        .bind(key_user_id)
        .bind(list_key)
        .fetch_all(self.pool())
        .await?;
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
        Ok(sqlx::query_as(
            "SELECT columns, query FROM list_views WHERE id = $1 AND key_user_id = $2 AND list_key = $3",
        )
        .bind(id)
        .bind(key_user_id)
        .bind(list_key)
        .fetch_optional(self.pool())
        .await?)
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
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO list_views (key_user_id, list_key, name, columns, query) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key_user_id, list_key, name) DO UPDATE SET columns = EXCLUDED.columns, query = EXCLUDED.query \
             RETURNING id",
        )
        .bind(key_user_id)
        .bind(list_key)
        .bind(name)
        .bind(columns)
        .bind(query)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }
}
