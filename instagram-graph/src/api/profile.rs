//! User Profile API.

use reqwest::Method;

use super::fields_query;
use crate::client::{Body, Client, Response};
use crate::error::Error;
use crate::model::profile::DEFAULT_PROFILE_FIELDS;
use crate::model::UserProfile;

impl Client {
    /// Reads the profile of a person by IGSID (`GET /<IGSID>?fields=...`). Empty `fields` reads
    /// the default fields. Before the person messaged the account this fails with
    /// [`ErrorKind::ConsentRequired`](crate::ErrorKind::ConsentRequired).
    pub async fn user_profile(
        &self,
        igsid: &str,
        fields: &[&str],
    ) -> Result<Response<UserProfile>, Error> {
        let fields = if fields.is_empty() {
            DEFAULT_PROFILE_FIELDS
        } else {
            fields
        };
        self.call(Method::GET, igsid, &fields_query(fields), Body::Empty)
            .await
    }
}
