//! Messenger profile: ice breakers and persistent menu (get, set, delete).

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::client::{Body, Client, Response};
use crate::error::{decode_json, Error};
use crate::model::{IceBreakers, PersistentMenu, Success};

/// Reads `{"data":[...]}` where each entry is either the item itself or `{"<field>": [items]}`.
fn flatten<T: DeserializeOwned>(value: Value, field: &str) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    let entries = match value.get("data") {
        Some(Value::Array(entries)) => entries.clone(),
        _ => Vec::new(),
    };
    for entry in entries {
        match entry.get(field) {
            Some(Value::Array(items)) => {
                for item in items {
                    out.push(decode_json::<T>(&item.to_string())?);
                }
            }
            _ => out.push(decode_json::<T>(&entry.to_string())?),
        }
    }
    Ok(out)
}

impl Client {
    fn messenger_profile_path(&self) -> String {
        format!("{}/messenger_profile", self.messaging_node())
    }

    async fn get_profile_field<T: DeserializeOwned>(
        &self,
        field: &str,
    ) -> Result<Response<Vec<T>>, Error> {
        let query = [
            ("fields", field.to_owned()),
            ("platform", "instagram".to_owned()),
        ];
        let raw: Response<Value> = self
            .call(
                Method::GET,
                &self.messenger_profile_path(),
                &query,
                Body::Empty,
            )
            .await?;
        let usage = raw.usage.clone();
        let status = raw.status;
        let items = flatten(raw.data, field)?;
        Ok(Response {
            data: items,
            usage,
            status,
        })
    }

    async fn delete_profile_field(&self, field: &str) -> Result<Response<Success>, Error> {
        let query = [("platform", "instagram".to_owned())];
        let body = Body::Json(json!({ "fields": [field] }));
        self.call(Method::DELETE, &self.messenger_profile_path(), &query, body)
            .await
    }

    /// Reads the ice breakers, one entry per locale.
    pub async fn ice_breakers(&self) -> Result<Response<Vec<IceBreakers>>, Error> {
        self.get_profile_field("ice_breakers").await
    }

    /// Replaces the ice breakers (each [`IceBreakers`] holds 1 to 4 questions for one locale).
    pub async fn set_ice_breakers(&self, sets: &[IceBreakers]) -> Result<Response<Success>, Error> {
        if sets.is_empty() {
            return Err(Error::validation(
                "give at least one set of ice breakers; use delete_ice_breakers to remove them",
            ));
        }
        let body = Body::Json(json!({ "platform": "instagram", "ice_breakers": sets }));
        self.call(Method::POST, &self.messenger_profile_path(), &[], body)
            .await
    }

    /// Removes the ice breakers.
    pub async fn delete_ice_breakers(&self) -> Result<Response<Success>, Error> {
        self.delete_profile_field("ice_breakers").await
    }

    /// Reads the persistent menu, one entry per locale.
    pub async fn persistent_menu(&self) -> Result<Response<Vec<PersistentMenu>>, Error> {
        self.get_profile_field("persistent_menu").await
    }

    /// Replaces the persistent menu (one [`PersistentMenu`] per locale, `default` first).
    pub async fn set_persistent_menu(
        &self,
        menus: &[PersistentMenu],
    ) -> Result<Response<Success>, Error> {
        if menus.is_empty() {
            return Err(Error::validation(
                "give at least one menu; use delete_persistent_menu to remove it",
            ));
        }
        let body = Body::Json(json!({ "platform": "instagram", "persistent_menu": menus }));
        self.call(Method::POST, &self.messenger_profile_path(), &[], body)
            .await
    }

    /// Removes the persistent menu.
    pub async fn delete_persistent_menu(&self) -> Result<Response<Success>, Error> {
        self.delete_profile_field("persistent_menu").await
    }
}
