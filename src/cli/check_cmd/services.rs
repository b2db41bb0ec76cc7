//! Checks of the two services, by reads only: GHL credentials, scopes, the location and its
//! rate-limit headers; the BulkSMS account, its credits and quota.

use super::{CheckLine, fail, ok, sends_possible, warn};
use crate::api::ApiError;
use crate::api::ApiRequest;
use crate::api::auth::read_token_store;
use crate::api::authorize::ghl_scopes_needed;
use crate::api::ghl::{GhlClient, token_store_path};
use crate::config::{GhlAuthConfig, PipelineConfig};
use chrono::{DateTime, Utc};
use reqwest::Method;

pub(super) async fn ghl_checks(config: &PipelineConfig, now: DateTime<Utc>) -> Vec<CheckLine> {
    let needed = ghl_scopes_needed(config.load.enabled, &config.ghl.auth);
    let mut checks = Vec::new();
    // Token expiry is judged at the time the checks run at.
    let clock = std::sync::Arc::new(crate::clock::FixedClock::at(now));
    let client = match crate::pipeline::clients::ghl_client(config, clock) {
        Ok(c) => c,
        Err(e) => {
            checks.push(fail(
                "ghl.credentials",
                e.to_string(),
                "check [ghl] in the pipeline file",
            ));
            return checks;
        }
    };
    let oauth = matches!(config.ghl.auth, GhlAuthConfig::Oauth { .. });
    if oauth {
        let store = token_store_path(&config.state_dir());
        let tokens = match read_token_store(&store) {
            Ok(t) => t,
            Err(e) => {
                checks.push(fail(
                    "ghl.credentials",
                    e.to_string(),
                    "connect the location: contactsync auth ghl --pipeline FILE",
                ));
                return checks;
            }
        };
        let manager = client
            .token_manager()
            .expect("OAuth config always has a token manager");
        // Refreshes only when the access token is due, as a run would.
        if let Err(e) = manager.access_token().await {
            checks.push(fail(
                "ghl.credentials",
                format!("the stored tokens cannot be refreshed: {e}"),
                "connect the location again: contactsync auth ghl --pipeline FILE",
            ));
            return checks;
        }
        let current = manager.tokens().await.unwrap_or(tokens);
        let age_days = (now - current.obtained_at).num_days();
        checks.push(if age_days > 300 {
            warn(
                "ghl.credentials",
                format!(
                    "OAuth tokens last refreshed {age_days} days ago; GHL refresh tokens expire a year after they are issued"
                ),
                "run the pipeline (each run refreshes them) or authorise again: contactsync auth ghl",
            )
        } else {
            ok(
                "ghl.credentials",
                format!(
                    "OAuth tokens in {} (access token valid until {})",
                    store.display(),
                    current.expires_at.format("%Y-%m-%d %H:%M UTC")
                ),
            )
        });
        let granted = current.scopes();
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|s| !granted.contains(s))
            .collect();
        checks.push(if missing.is_empty() {
            ok(
                "ghl.scopes",
                format!("granted {}; needed {}", current.scope, needed.join(" ")),
            )
        } else {
            fail(
                "ghl.scopes",
                format!(
                    "the grant lacks {} (granted: {:?}; this pipeline {} and needs {})",
                    missing.join(", "),
                    current.scope,
                    if config.load.enabled { "writes" } else { "only reads" },
                    needed.join(" ")
                ),
                "add the scopes in the app's settings (marketplace.gohighlevel.com, My Apps > the app, where its scopes are configured), then run `contactsync auth ghl` again and allow them",
            )
        });
    } else {
        checks.push(ok(
            "ghl.credentials",
            "private integration token (static; HighLevel suggests rotating it every 90 days)",
        ));
        checks.push(if config.load.enabled {
            warn(
                "ghl.scopes",
                "the scopes of a private integration token cannot be read through the API; the location check below proves contacts.readonly only",
                "in HighLevel, Settings > Private Integrations > the token: make sure it has contacts.readonly and contacts.write",
            )
        } else {
            ok(
                "ghl.scopes",
                "this pipeline only reads: contacts.readonly, which the location check below proves",
            )
        });
    }
    checks.extend(ghl_location_checks(&client, config).await);
    checks
}

/// One location-scoped read (a search for one contact): access to the location, and the
/// rate-limit headers of its answer.
async fn ghl_location_checks(client: &GhlClient, config: &PipelineConfig) -> Vec<CheckLine> {
    let body = serde_json::json!({"locationId": client.location_id(), "pageLimit": 1});
    let request =
        ApiRequest::with_body(Method::POST, "/contacts/search", body, true).label("check");
    let answer = client
        .api()
        .send_decoded(&request, |resp| {
            let total = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| {
                    v.get("total")
                        .or_else(|| v.get("count"))
                        .and_then(|t| t.as_u64())
                });
            Ok((total, resp.headers.clone()))
        })
        .await;
    let (total, headers) = match answer {
        Ok(found) => found,
        Err(e) => return vec![ghl_failure(&e, config)],
    };
    let mut checks = vec![ok(
        "ghl.location",
        format!(
            "location {} answers ({} contacts)",
            client.location_id(),
            total.map_or("an unknown number of".to_string(), |t| t.to_string())
        ),
    )];
    checks.push(rate_limit_check(&headers, config));
    checks
}

fn ghl_failure(error: &ApiError, config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "ghl.location";
    match error {
        ApiError::Status {
            status: 401, body, ..
        } => fail(
            NAME,
            format!("GHL refused the token (HTTP 401: {body})"),
            match config.ghl.auth {
                GhlAuthConfig::Oauth { .. } => {
                    "connect the location again: contactsync auth ghl --pipeline FILE"
                }
                GhlAuthConfig::AgencyOauth { .. } => {
                    "connect the agency again: contactsync auth ghl --pipeline FILE (and check that the app is still installed on the location)"
                }
                GhlAuthConfig::PrivateToken { .. } => {
                    "make a new token in HighLevel, Settings > Private Integrations, with contacts.readonly (and contacts.write to write), and set ghl.auth.token (or the location's entry of ghl.auth.tokens)"
                }
            },
        ),
        ApiError::Status {
            status: 403, body, ..
        } => fail(
            NAME,
            format!(
                "the token has no access to location {} (HTTP 403: {body})",
                config.ghl.location_id
            ),
            "set ghl.location_id to the sub-account's id (Settings > Business Profile), and use a token made in that sub-account",
        ),
        ApiError::Status { status, body, .. } => fail(
            NAME,
            format!("GHL answered HTTP {status}: {body}"),
            "check ghl.base_url and ghl.api_version",
        ),
        ApiError::Transport { message, .. } => fail(
            NAME,
            format!("cannot reach GHL at {}: {message}", config.ghl.base_url),
            "check ghl.base_url (https://services.leadconnectorhq.com in production) and the network or proxy",
        ),
        other => fail(NAME, other.to_string(), "see the error"),
    }
}

fn rate_limit_check(headers: &reqwest::header::HeaderMap, config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "ghl.rate_limit";
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let max = value("x-ratelimit-max");
    let remaining = value("x-ratelimit-remaining");
    let interval = value("x-ratelimit-interval-milliseconds");
    let daily = value("x-ratelimit-limit-daily");
    let daily_remaining = value("x-ratelimit-daily-remaining");
    let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    let seen = format!(
        "burst {} per {} ms ({} left), daily {} ({} left)",
        show(max),
        show(interval),
        show(remaining),
        show(daily),
        show(daily_remaining)
    );
    if max.is_none() && daily.is_none() {
        return warn(
            NAME,
            "the answer carried no X-RateLimit-* headers",
            "the pipeline then paces by [ghl.rate_limit] alone; check that nothing between here and GHL strips headers",
        );
    }
    let configured = &config.ghl.rate_limit;
    if let (Some(max), Some(interval)) = (max, interval) {
        let allowed = max as f64 / interval.max(1) as f64;
        let planned = configured.burst as f64 / configured.window_ms.max(1) as f64;
        if allowed < planned {
            return warn(
                NAME,
                format!(
                    "{seen}: GHL allows less than [ghl.rate_limit] says ({} per {} ms)",
                    configured.burst, configured.window_ms
                ),
                format!(
                    "set [ghl.rate_limit] burst = {max}, window_ms = {interval} (the pipeline also slows down on these headers and on 429)"
                ),
            );
        }
    }
    if let (Some(daily), Some(left)) = (daily, daily_remaining)
        && left < daily / 10
    {
        return warn(
            NAME,
            format!("{seen}: under 10 % of today's budget is left"),
            "another app may be spending this location's budget; run later or lower other apps' use",
        );
    }
    ok(NAME, seen)
}

pub(super) async fn bulksms_checks(config: &PipelineConfig) -> Vec<CheckLine> {
    const NAME: &str = "bulksms.credentials";
    let client = match crate::pipeline::clients::bulksms_client(config) {
        Ok(c) => c,
        Err(e) => {
            return vec![fail(
                NAME,
                e.to_string(),
                "check [bulksms] in the pipeline file",
            )];
        }
    };
    let profile = match client.profile().await {
        Ok(p) => p,
        Err(ApiError::Status {
            status: 401 | 403,
            body,
            ..
        }) => {
            return vec![fail(
                NAME,
                format!("BulkSMS refused the token id and secret (GET /profile: {body})"),
                "make an API token in the BulkSMS web app (Settings > API Tokens) and set bulksms.token_id and bulksms.token_secret",
            )];
        }
        Err(ApiError::Transport { message, .. }) => {
            return vec![fail(
                NAME,
                format!(
                    "cannot reach BulkSMS at {}: {message}",
                    config.bulksms.base_url
                ),
                "check bulksms.base_url (https://api.bulksms.com/v1 in production) and the network or proxy",
            )];
        }
        Err(e) => return vec![fail(NAME, e.to_string(), "check bulksms.base_url")],
    };
    let username = profile
        .extra
        .get("username")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let mut checks = vec![ok(
        NAME,
        format!("GET /profile answers for account {username}"),
    )];
    checks.push(credits_check(&profile, config));
    checks
}

/// Texts the next run may send: the last accepted plan's, else the `max_sends` limit.
fn expected_sends(config: &PipelineConfig) -> (u64, String) {
    let last_plan = crate::snapshot::run::list_runs(&config.state_dir())
        .ok()
        .and_then(|runs| runs.into_iter().rev().find(|r| r.plan_committed()))
        .and_then(|run| {
            crate::load::plan_io::read_plan(&run.load_dir(), &run.id)
                .ok()
                .map(|plan| (run.id, plan.counts().get("send_sms").copied().unwrap_or(0)))
        });
    match last_plan {
        Some((run, sends)) => (sends, format!("run {run} planned {sends} texts")),
        None => (
            config.load.max_sends,
            format!(
                "a run may send up to load.max_sends = {}",
                config.load.max_sends
            ),
        ),
    }
}

fn credits_check(
    profile: &crate::api::bulksms::types::Profile,
    config: &PipelineConfig,
) -> CheckLine {
    const NAME: &str = "bulksms.credits";
    let balance = profile.credits.as_ref().and_then(|c| c.balance);
    let quota = profile.quota.as_ref().and_then(|q| q.remaining);
    let shown = format!(
        "balance {} credits, today's quota {} messages left",
        balance.map_or("?".to_string(), |b| format!("{b}")),
        quota.map_or("?".to_string(), |q| q.to_string())
    );
    if !sends_possible(config) {
        return ok(NAME, format!("{shown} (this pipeline sends no texts)"));
    }
    let (expected, why) = expected_sends(config);
    if let Some(balance) = balance
        && balance < expected as f64
    {
        return warn(
            NAME,
            format!("{shown}; {why}, a credit or more each"),
            "buy credits in the BulkSMS web app before the run, or texts past the balance fail",
        );
    }
    if let Some(quota) = quota
        && quota < expected as i64
    {
        return warn(
            NAME,
            format!("{shown}; {why}"),
            "texts past today's quota fail until it resets; ask BulkSMS to raise it",
        );
    }
    ok(NAME, format!("{shown}; {why}"))
}

#[cfg(test)]
mod tests {
    use super::super::{CheckStatus, test_pipeline};
    use super::*;

    #[test]
    fn rate_limit_headers_are_reported_and_a_lower_limit_warns() {
        let config = test_pipeline("");
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-max", "25"),
            ("x-ratelimit-remaining", "24"),
            ("x-ratelimit-interval-milliseconds", "10000"),
            ("x-ratelimit-limit-daily", "10000"),
            ("x-ratelimit-daily-remaining", "9000"),
        ] {
            headers.insert(k, v.parse().expect("header value"));
        }
        let line = rate_limit_check(&headers, &config);
        assert_eq!(line.status, CheckStatus::Warn, "{}", line.message);
        assert!(
            line.message.contains("burst 25 per 10000 ms (24 left)"),
            "{}",
            line.message
        );
        assert!(line.fix.expect("fix").contains("burst = 25"));
        headers.insert("x-ratelimit-max", "100".parse().expect("value"));
        assert_eq!(rate_limit_check(&headers, &config).status, CheckStatus::Ok);
        let line = rate_limit_check(&reqwest::header::HeaderMap::new(), &config);
        assert_eq!(line.status, CheckStatus::Warn);
    }
}
