//! The first half of GHL's OAuth authorization-code flow: the authorization page's URL with the
//! least scopes a pipeline needs, the `state` that ties the answer to this request, and reading the
//! code back, from a loopback redirect, a pasted redirect URL or a pasted code.
//!
//! The second half (code for tokens, refresh, storage) is [`super::auth::GhlTokenManager`].

use super::auth::{GHL_READ_SCOPE, GHL_WRITE_SCOPE};
use super::config::GhlAuthConfig;
use crate::secret::Secret;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// HighLevel's authorization page (docs/Authorization.md); white-label hosts differ.
pub const GHL_AUTHORIZE_URL: &str = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation";

/// Scope of `GET /oauth/installedLocations` (an agency grant's, docs/Scopes.md).
pub const GHL_OAUTH_READ_SCOPE: &str = "oauth.readonly";
/// Scope of `POST /oauth/locationToken` (an agency grant's, docs/Scopes.md).
pub const GHL_OAUTH_WRITE_SCOPE: &str = "oauth.write";

/// The GHL scopes a pipeline needs, and no more: a read-only pipeline (`[load] enabled = false`,
/// `writes` false) asks for `contacts.readonly` only; one that writes adds `contacts.write`; an
/// agency grant (`agency_oauth`) adds `oauth.readonly` and `oauth.write` to list its locations and
/// mint their tokens.
pub fn ghl_scopes_needed(writes: bool, auth: &GhlAuthConfig) -> Vec<&'static str> {
    let mut scopes = if writes {
        vec![GHL_READ_SCOPE, GHL_WRITE_SCOPE]
    } else {
        vec![GHL_READ_SCOPE]
    };
    if matches!(auth, GhlAuthConfig::AgencyOauth { .. }) {
        scopes.extend([GHL_OAUTH_READ_SCOPE, GHL_OAUTH_WRITE_SCOPE]);
    }
    scopes
}

/// The authorization page's URL: `response_type=code`, `redirect_uri`, `client_id`, `scope`
/// (space-separated, sent as `%20`) and `state`.
pub fn authorize_url(
    page: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[&str],
    state: &str,
) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(page)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", client_id)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .finish()
        // Form encoding writes a space as `+`; `%20` means a space to every decoder, and a
        // literal `+` was already written `%2B`.
        .replace('+', "%20");
    url.set_query(Some(&query));
    Ok(url)
}

/// A fresh `state`: 128 random bits in hex, unguessable by a page that forges a redirect.
pub fn new_state() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Why no authorization code could be taken from an answer.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Nothing was pasted.
    #[error("nothing was pasted: expected the code or the whole address the browser was sent to")]
    Empty,
    /// The redirect came without a code (and without an error).
    #[error("the redirect carries no `code` parameter")]
    NoCode,
    /// The authorization page answered with an OAuth error (RFC 6749 §4.1.2.1).
    #[error("GHL refused the authorization: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    /// `state` differs from the one sent: the answer belongs to another request.
    #[error(
        "the redirect's `state` does not match the one this authorization sent: it answers another request (an old browser tab or a forged link); run `contactsync auth ghl` again and use the new URL"
    )]
    StateMismatch,
    /// A `state` was sent and none came back.
    #[error(
        "the redirect carries no `state`, so it cannot be tied to this request; if the address really came from the authorization page, pass only its code: --code CODE"
    )]
    MissingState,
    /// A redirect with a `state` arrived but no authorization was started here.
    #[error(
        "the redirect carries a `state` but no authorization was started from this state directory; run `contactsync auth ghl` without --code to get a new URL, or pass only the code: --code CODE"
    )]
    UnexpectedState,
    /// The loopback address could not be listened on.
    #[error("listening on {addr} for the redirect (ghl.auth.redirect_uri): {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// No redirect arrived in time.
    #[error(
        "no redirect reached {redirect_uri} within {secs} s; open the URL again, or paste the address the browser ended on with --code"
    )]
    Timeout { redirect_uri: String, secs: u64 },
}

/// The code in a pasted answer: a bare code, a whole redirect URL, or its query string. A `state`
/// in the answer must equal `expected_state`; an answer without one is accepted only when it is a
/// bare code (which carries nothing to check).
pub fn code_from_pasted(
    input: &str,
    expected_state: Option<&str>,
) -> Result<Secret, AuthorizeError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(AuthorizeError::Empty);
    }
    let query = if let Ok(url) = url::Url::parse(input) {
        url.query().unwrap_or("").to_string()
    } else if input.contains('=') {
        input.trim_start_matches('?').to_string()
    } else {
        return Ok(Secret::new(input.to_string()));
    };
    code_from_query(&query, expected_state)
}

/// The code in a redirect's query string, checking `state` against `expected_state`.
pub fn code_from_query(
    query: &str,
    expected_state: Option<&str>,
) -> Result<Secret, AuthorizeError> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    match (state.as_deref(), expected_state) {
        (Some(got), Some(expected)) if got != expected => {
            return Err(AuthorizeError::StateMismatch);
        }
        (Some(_), None) => return Err(AuthorizeError::UnexpectedState),
        (None, Some(_)) if error.is_none() => return Err(AuthorizeError::MissingState),
        _ => {}
    }
    if let Some(error) = error {
        return Err(AuthorizeError::Denied { error, description });
    }
    match code {
        Some(code) if !code.trim().is_empty() => Ok(Secret::new(code)),
        _ => Err(AuthorizeError::NoCode),
    }
}

/// The socket addresses a loopback redirect URI is served on, or `None` when the URI does not
/// point at this machine (the browser then lands elsewhere and the code is pasted).
pub fn loopback_addresses(redirect_uri: &str) -> Option<(Vec<SocketAddr>, String)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let url = url::Url::parse(redirect_uri).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let port = url.port_or_known_default()?;
    let ips: Vec<IpAddr> = match url.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            // A browser may resolve localhost to either family.
            vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        url::Host::Ipv4(ip) if ip.is_loopback() => vec![ip.into()],
        url::Host::Ipv6(ip) if ip.is_loopback() => vec![ip.into()],
        _ => return None,
    };
    let path = url.path().to_string();
    Some((
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        path,
    ))
}

/// A listener on a loopback redirect URI, waiting for the browser to bring the code back.
pub struct LoopbackRedirect {
    listeners: Vec<tokio::net::TcpListener>,
    path: String,
    redirect_uri: String,
}

impl LoopbackRedirect {
    /// Listens where `redirect_uri` points; `Ok(None)` when it is not a loopback `http://` URI.
    /// For `localhost`, IPv4 must bind; IPv6 is added when the machine has it.
    pub async fn bind(redirect_uri: &str) -> Result<Option<Self>, AuthorizeError> {
        let Some((addrs, path)) = loopback_addresses(redirect_uri) else {
            return Ok(None);
        };
        let mut listeners = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => listeners.push(listener),
                Err(source) if i == 0 => {
                    return Err(AuthorizeError::Listen {
                        addr: *addr,
                        source,
                    });
                }
                Err(e) => tracing::debug!(%addr, error = %e, "Not listening on this address"),
            }
        }
        Ok(Some(LoopbackRedirect {
            listeners,
            path,
            redirect_uri: redirect_uri.to_string(),
        }))
    }

    /// Waits up to `timeout` for a request on the redirect path, answers the browser with a short
    /// page, and returns its code (checked against `expected_state`). Requests for other paths
    /// (a browser's `/favicon.ico`) get a 404 and the wait goes on.
    pub async fn wait_for_code(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<Secret, AuthorizeError> {
        let (sender, mut received) = mpsc::channel::<Result<Secret, AuthorizeError>>(1);
        let expected_state = expected_state.to_string();
        let path = self.path.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let sender = sender.clone();
            let expected_state = expected_state.clone();
            let path = path.clone();
            async move { redirect_page(uri, &path, &expected_state, &sender).await }
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        for listener in self.listeners {
            let app = app.clone();
            let mut stopped = stopped.clone();
            servers.push(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _changed_or_closed = stopped.changed().await;
                    })
                    .await
            }));
        }
        let outcome = tokio::time::timeout(timeout, received.recv()).await;
        let _receivers_may_be_gone = stop.send(true);
        // The browser's answer page is in flight: give it a moment, not forever (a keep-alive
        // connection must not hold the command open).
        for server in servers {
            let _finished_or_not = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
        match outcome {
            Ok(Some(result)) => result,
            Ok(None) | Err(_) => Err(AuthorizeError::Timeout {
                redirect_uri: self.redirect_uri,
                secs: timeout.as_secs(),
            }),
        }
    }
}

async fn redirect_page(
    uri: axum::http::Uri,
    path: &str,
    expected_state: &str,
    sender: &mpsc::Sender<Result<Secret, AuthorizeError>>,
) -> (axum::http::StatusCode, axum::response::Html<String>) {
    use axum::http::StatusCode;
    if uri.path() != path {
        return (
            StatusCode::NOT_FOUND,
            axum::response::Html("Not the contactsync redirect path.".into()),
        );
    }
    let result = code_from_query(uri.query().unwrap_or(""), Some(expected_state));
    let page = match &result {
        Ok(_) => (
            StatusCode::OK,
            "<h1>contactsync is authorised</h1><p>The authorization code was received; you can close this tab and return to the terminal.</p>".to_string(),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!(
                "<h1>contactsync did not accept this answer</h1><p>{}</p>",
                html_escape(&e.to_string())
            ),
        ),
    };
    // Only the first answer counts; a second one (a reload) finds the channel full or closed.
    let _first_answer_wins = sender.try_send(result);
    (page.0, axum::response::Html(page.1))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::PipelineConfig;

    fn needed(config: &PipelineConfig) -> Vec<&'static str> {
        ghl_scopes_needed(config.load.enabled, &config.ghl.auth)
    }

    fn pipeline(extra: &str) -> PipelineConfig {
        crate::config::test_support::pipeline(
            r#"{ kind = "oauth", client_id = "app", client_secret = "s" }"#,
            extra,
        )
    }

    #[test]
    fn a_read_only_pipeline_asks_for_contacts_readonly_only() {
        let config = pipeline("[load]\nenabled = false\n");
        assert_eq!(needed(&config), vec!["contacts.readonly"]);
    }

    #[test]
    fn a_writing_pipeline_adds_contacts_write() {
        assert_eq!(
            needed(&pipeline("")),
            vec!["contacts.readonly", "contacts.write"]
        );
        assert_eq!(
            needed(&pipeline("[load]\nmax_sends = 0\n")),
            vec!["contacts.readonly", "contacts.write"],
            "a pipeline that may still tag, note or set DND writes"
        );
    }

    #[test]
    fn the_authorize_url_carries_every_parameter_with_spaces_between_scopes() {
        let url = authorize_url(
            GHL_AUTHORIZE_URL,
            "app-id",
            "http://127.0.0.1:8976/callback",
            &["contacts.readonly", "contacts.write"],
            "abc123",
        )
        .expect("valid");
        let text = url.as_str();
        assert!(
            text.starts_with("https://marketplace.gohighlevel.com/v2/oauth/chooselocation?"),
            "{text}"
        );
        assert!(
            text.contains("scope=contacts.readonly%20contacts.write"),
            "{text}"
        );
        let pairs: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["client_id"], "app-id");
        assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:8976/callback");
        assert_eq!(pairs["scope"], "contacts.readonly contacts.write");
        assert_eq!(pairs["state"], "abc123");
    }

    #[test]
    fn states_are_fresh_and_long() {
        let (a, b) = (new_state(), new_state());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn a_pasted_code_url_or_query_gives_the_code() {
        let code = |input: &str, state: Option<&str>| {
            code_from_pasted(input, state).map(|c| c.expose().to_string())
        };
        assert_eq!(code(" abc \n", None).expect("bare"), "abc");
        assert_eq!(
            code("abc", Some("s1")).expect("bare, state unchecked"),
            "abc"
        );
        assert_eq!(
            code("https://app.example/cb?code=abc&state=s1", Some("s1")).expect("url"),
            "abc"
        );
        assert_eq!(
            code("?code=abc&state=s1", Some("s1")).expect("query"),
            "abc"
        );
        assert_eq!(code("code=abc", None).expect("query without state"), "abc");
    }

    #[test]
    fn a_pasted_redirect_with_the_wrong_or_no_state_is_refused() {
        let err =
            |input: &str, state: Option<&str>| code_from_pasted(input, state).expect_err(input);
        assert!(matches!(
            err("http://127.0.0.1:1/cb?code=abc&state=other", Some("s1")),
            AuthorizeError::StateMismatch
        ));
        assert!(matches!(
            err("http://127.0.0.1:1/cb?code=abc", Some("s1")),
            AuthorizeError::MissingState
        ));
        assert!(matches!(
            err("http://127.0.0.1:1/cb?code=abc&state=s1", None),
            AuthorizeError::UnexpectedState
        ));
        assert!(matches!(
            err("http://127.0.0.1:1/cb?state=s1", Some("s1")),
            AuthorizeError::NoCode
        ));
        assert!(matches!(err("  ", None), AuthorizeError::Empty));
        let denied = err(
            "http://127.0.0.1:1/cb?error=access_denied&error_description=User+said+no&state=s1",
            Some("s1"),
        );
        assert!(
            denied.to_string().contains("access_denied (User said no)"),
            "{denied}"
        );
    }

    #[test]
    fn only_loopback_http_redirects_are_listened_on() {
        let (addrs, path) =
            loopback_addresses("http://127.0.0.1:8976/oauth/callback").expect("loopback");
        assert_eq!(addrs, vec!["127.0.0.1:8976".parse().expect("addr")]);
        assert_eq!(path, "/oauth/callback");
        let (addrs, _) = loopback_addresses("http://localhost:8976/").expect("localhost");
        assert_eq!(addrs.len(), 2, "both families for localhost");
        assert!(loopback_addresses("https://app.example/cb").is_none());
        assert!(loopback_addresses("http://192.0.2.1:8976/cb").is_none());
    }
}
