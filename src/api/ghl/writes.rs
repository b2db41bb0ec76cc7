//! GHL write calls used by load. Each says whether a blind resend is safe; the ones that are not
//! (creates) are made exactly-once by load's ledger and read-back, not by retrying.

use super::GhlClient;
use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use reqwest::Method;
use serde_json::{Value, json};

impl GhlClient {
    /// `POST /contacts/`: creates a contact; answers the created contact. Not idempotent.
    pub async fn create_contact(&self, mut payload: Value) -> Result<Value, ApiError> {
        payload["locationId"] = json!(self.location_id());
        let request = ApiRequest::with_body(Method::POST, "/contacts/", payload, false);
        let answer: Value = self.api().send_json(&request).await?;
        Ok(answer.get("contact").cloned().unwrap_or(answer))
    }

    /// `POST /contacts/upsert`: create or update by the location's duplicate rule; answers
    /// `(created, contact)`. Idempotent when the payload has an email or phone: a resend finds the
    /// contact it made. Without either it is a plain create, never resent blindly.
    pub async fn upsert_contact(&self, mut payload: Value) -> Result<(bool, Value), ApiError> {
        let findable = ["email", "phone"].iter().any(|k| {
            payload
                .get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty())
        });
        payload["locationId"] = json!(self.location_id());
        let request = ApiRequest::with_body(Method::POST, "/contacts/upsert", payload, findable);
        let answer: Value = self.api().send_json(&request).await?;
        let created = answer.get("new").and_then(Value::as_bool).unwrap_or(false);
        Ok((
            created,
            answer.get("contact").cloned().unwrap_or(Value::Null),
        ))
    }

    /// `PUT /contacts/{id}`: sets fields (idempotent). `tags` here would replace all tags: use
    /// [`GhlClient::add_tags`] instead.
    pub async fn update_contact(
        &self,
        contact_id: &str,
        payload: Value,
    ) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::PUT,
            format!("/contacts/{contact_id}"),
            payload,
            true,
        );
        self.api().send_json(&request).await
    }

    /// `DELETE /contacts/{id}`. A resend after a lost answer finds the contact gone (400 "not
    /// found"), which counts as done.
    pub async fn delete_contact(&self, contact_id: &str) -> Result<(), ApiError> {
        let request = ApiRequest {
            method: Method::DELETE,
            ..ApiRequest::get(format!("/contacts/{contact_id}"))
        };
        match self.api().send_json::<Value>(&request).await {
            Ok(_) => Ok(()),
            Err(ApiError::Status {
                status: 400, body, ..
            }) if body.contains("not found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /contacts/{id}/tags`: adds tags (a set union, so idempotent); answers the tag list.
    pub async fn add_tags(&self, contact_id: &str, tags: &[String]) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::POST,
            format!("/contacts/{contact_id}/tags"),
            json!({"tags": tags}),
            true,
        );
        self.api().send_json(&request).await
    }

    /// `DELETE /contacts/{id}/tags`: removes tags (idempotent).
    pub async fn remove_tags(&self, contact_id: &str, tags: &[String]) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::DELETE,
            format!("/contacts/{contact_id}/tags"),
            json!({"tags": tags}),
            true,
        );
        self.api().send_json(&request).await
    }

    /// `POST /contacts/{id}/notes`: not idempotent; load puts a marker in the body to read it back.
    pub async fn create_note(&self, contact_id: &str, body: &str) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::POST,
            format!("/contacts/{contact_id}/notes"),
            json!({"body": body}),
            false,
        );
        self.api().send_json(&request).await
    }

    /// `POST /contacts/{id}/tasks`: not idempotent; load puts a marker in the body to read it back.
    pub async fn create_task(
        &self,
        contact_id: &str,
        title: &str,
        body: &str,
        due_date: &str,
        assigned_to: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut payload =
            json!({"title": title, "body": body, "dueDate": due_date, "completed": false});
        if let Some(user) = assigned_to {
            payload["assignedTo"] = json!(user);
        }
        let request = ApiRequest::with_body(
            Method::POST,
            format!("/contacts/{contact_id}/tasks"),
            payload,
            false,
        );
        self.api().send_json(&request).await
    }

    /// `PUT /contacts/{id}/tasks/{taskId}/completed` (idempotent).
    pub async fn complete_task(&self, contact_id: &str, task_id: &str) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::PUT,
            format!("/contacts/{contact_id}/tasks/{task_id}/completed"),
            json!({"completed": true}),
            true,
        );
        self.api().send_json(&request).await
    }

    /// `PUT /contacts/{id}/tasks/{taskId}`: sets the fields in `fields` (idempotent: the same body
    /// twice leaves the task as once); answers the task.
    pub async fn update_task(
        &self,
        contact_id: &str,
        task_id: &str,
        fields: Value,
    ) -> Result<Value, ApiError> {
        let request = ApiRequest::with_body(
            Method::PUT,
            format!("/contacts/{contact_id}/tasks/{task_id}"),
            fields,
            true,
        );
        self.api().send_json(&request).await
    }

    /// `GET /contacts/search/duplicate`: the contact an email or phone would collide with. Unlike
    /// search it is not behind the search index, so it sees a contact created a moment ago.
    pub async fn find_duplicate(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let mut request =
            ApiRequest::get("/contacts/search/duplicate").query("locationId", self.location_id());
        if let Some(email) = email {
            request = request.query("email", email);
        }
        if let Some(phone) = phone {
            request = request.query("number", phone);
        }
        let answer: Value = self.api().send_json(&request).await?;
        Ok(answer.get("contact").filter(|c| !c.is_null()).cloned())
    }

    /// Ids of every contact `/contacts/search` holds with this phone (a `phone` `eq` filter),
    /// paged with `searchAfter`. Search lags writes by seconds: pair it with
    /// [`GhlClient::find_duplicate`] to see a contact written a moment ago.
    pub async fn contact_ids_with_phone(&self, phone: &str) -> Result<Vec<String>, ApiError> {
        const PAGE: usize = 100;
        let mut ids = Vec::new();
        let mut search_after: Option<Value> = None;
        loop {
            let mut body = json!({
                "locationId": self.location_id(),
                "pageLimit": PAGE,
                "filters": [{"field": "phone", "operator": "eq", "value": phone}],
                "sort": [{"field": "dateAdded", "direction": "asc"}],
            });
            if let Some(cursor) = &search_after {
                body["searchAfter"] = cursor.clone();
            }
            let request = ApiRequest::with_body(Method::POST, "/contacts/search", body, true)
                .label(format!("phone {phone}"));
            let page: super::SearchPage = self.api().send_json(&request).await?;
            let count = page.contacts.len();
            search_after = page
                .contacts
                .last()
                .and_then(|c| c.get("searchAfter"))
                .cloned();
            ids.extend(
                page.contacts
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str))
                    .map(str::to_string),
            );
            if count < PAGE || search_after.is_none() {
                return Ok(ids);
            }
        }
    }

    /// `GET /contacts/{id}`.
    pub async fn get_contact(&self, contact_id: &str) -> Result<Option<Value>, ApiError> {
        let request = ApiRequest::get(format!("/contacts/{contact_id}"));
        match self.api().send_json::<Value>(&request).await {
            Ok(answer) => Ok(answer.get("contact").cloned()),
            Err(ApiError::Status {
                status: 400 | 404, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
