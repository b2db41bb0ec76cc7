//! An agency's locations in the sandbox (`--locations N`): each location's data, tokens and rate
//! budget are its own; the company-level app lists the installed locations and mints their tokens.

mod common;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const FORBIDDEN: &str = "The token does not have access to this location.";
const WRONG_CLASS: &str = "This authClass type is not allowed to access this scope.";

fn options() -> SandboxOptions {
    SandboxOptions {
        contacts: 40,
        messages: 10,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

/// Every contact id `token` finds by searching `location_id`.
async fn searched_ids(h: &Harness, token: &str, location_id: &str) -> BTreeSet<String> {
    let (status, body) = h
        .ghl(
            Method::POST,
            "/contacts/search",
            token,
            Some(json!({"locationId": location_id, "pageLimit": 500})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["contacts"]
        .as_array()
        .expect("contacts array")
        .iter()
        .map(|c| {
            assert_eq!(
                c["locationId"], location_id,
                "a contact of another location"
            );
            c["id"].as_str().expect("id").to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_location_has_its_own_contacts_and_refuses_another_location_s_token() {
    let h = Harness::start_locations(3, options()).await;
    let locations = h.locations().to_vec();
    assert_eq!(locations.len(), 3);
    assert_eq!(locations[0].id, h.sandbox.info.ghl_location_id);
    assert_eq!(locations[0].private_token, h.sandbox.info.ghl_token);
    let distinct: BTreeSet<&str> = locations.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(distinct.len(), 3, "location ids repeat: {locations:?}");

    let mut all_ids = BTreeSet::new();
    for location in &locations {
        let ids = searched_ids(&h, &location.private_token, &location.id).await;
        assert_eq!(ids.len(), 40, "{}'s own seeded contacts", location.id);
        let state = h.control(&format!("state?location={}", location.id)).await;
        assert_eq!(common::state_ids(&state, "ghl", "contacts", "id"), ids);
        all_ids.extend(ids);
    }
    assert_eq!(
        all_ids.len(),
        120,
        "contact ids are distinct across locations"
    );

    let (a, b) = (&locations[0], &locations[1]);
    // Another location's id in the body, the query, or as the contact of the path: 403.
    let (status, body) = h
        .ghl(
            Method::POST,
            "/contacts/search",
            &a.private_token,
            Some(json!({"locationId": b.id, "pageLimit": 10})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::FORBIDDEN, Some(FORBIDDEN))
    );
    let (status, body) = h
        .ghl(
            Method::GET,
            &format!("/contacts/?locationId={}&limit=5", b.id),
            &a.private_token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::FORBIDDEN, Some(FORBIDDEN))
    );
    let (status, body) = h
        .ghl(
            Method::POST,
            "/contacts/",
            &a.private_token,
            Some(json!({"locationId": b.id, "firstName": "Crossing"})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::FORBIDDEN, Some(FORBIDDEN))
    );
    let b_contact = searched_ids(&h, &b.private_token, &b.id)
        .await
        .into_iter()
        .next()
        .expect("b has contacts");
    for (method, path) in [
        (Method::GET, format!("/contacts/{b_contact}")),
        (Method::DELETE, format!("/contacts/{b_contact}")),
        (Method::GET, format!("/contacts/{b_contact}/notes")),
    ] {
        let (status, body) = h.ghl(method.clone(), &path, &a.private_token, None).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::FORBIDDEN, Some(FORBIDDEN)),
            "{method} {path} with another location's token"
        );
    }
    let (status, body) = h
        .ghl(
            Method::GET,
            &format!("/contacts/{b_contact}"),
            &b.private_token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["contact"]["locationId"], b.id.as_str());
    // A write through A's token stays in A.
    let (status, body) = h
        .ghl(
            Method::POST,
            "/contacts/",
            &a.private_token,
            Some(json!({"locationId": a.id, "firstName": "Only", "email": "only.a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = body["contact"]["id"].as_str().expect("id").to_string();
    let state_b = h.control(&format!("state?location={}", b.id)).await;
    assert!(!common::state_ids(&state_b, "ghl", "contacts", "id").contains(&created));
    let state_a = h.control(&format!("state?location={}", a.id)).await;
    assert!(common::state_ids(&state_a, "ghl", "contacts", "id").contains(&created));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_location_hammered_to_429_leaves_another_s_budget_untouched() {
    let h = Harness::start_locations(
        2,
        SandboxOptions {
            rate_limit: true,
            rate_limit_burst: 5,
            rate_limit_window_ms: 600_000,
            ..options()
        },
    )
    .await;
    let (a, b) = (h.locations()[0].clone(), h.locations()[1].clone());
    let path_a = format!("/contacts/?locationId={}&limit=1", a.id);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(h.ghl(Method::GET, &path_a, &a.private_token, None).await.0);
    }
    assert_eq!(statuses[..5], [StatusCode::OK; 5]);
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 3]);
    let path_b = format!("/contacts/?locationId={}&limit=1", b.id);
    for i in 0..5 {
        let (status, body) = h.ghl(Method::GET, &path_b, &b.private_token, None).await;
        assert_eq!(status, StatusCode::OK, "request {i} of location b: {body}");
    }
    let (status, _) = h.ghl(Method::GET, &path_b, &b.private_token, None).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "b has a budget of its own"
    );
}

/// `POST /oauth/token` with a form.
async fn token_call(h: &Harness, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = h
        .http
        .post(format!("{}/oauth/token", h.sandbox.info.ghl_base_url))
        .form(form)
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn company_token(h: &Harness) -> Value {
    let info = &h.sandbox.info;
    let (status, body) = token_call(
        h,
        &[
            ("client_id", &info.ghl_client_id),
            ("client_secret", &info.ghl_client_secret),
            ("grant_type", "authorization_code"),
            ("code", &info.ghl_company_auth_code),
            ("user_type", "Company"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn mint(h: &Harness, company: &str, location_id: &str) -> (StatusCode, Value) {
    let response = h
        .http
        .post(format!(
            "{}/oauth/locationToken",
            h.sandbox.info.ghl_base_url
        ))
        .bearer_auth(company)
        .header("Version", "2021-07-28")
        .form(&[
            ("companyId", h.sandbox.info.ghl_company_id.as_str()),
            ("locationId", location_id),
        ])
        .send()
        .await
        .expect("locationToken answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_grant_pages_installed_locations_and_mints_a_token_per_location() {
    let h = Harness::start_locations(3, options()).await;
    let info = h.sandbox.info.clone();
    let grant = company_token(&h).await;
    assert_eq!(grant["userType"], "Company");
    assert_eq!(grant["companyId"], info.ghl_company_id.as_str());
    assert!(grant.get("locationId").is_none(), "{grant}");
    assert!(
        grant["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let company = grant["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let app_id = info.ghl_client_id.split('-').next().expect("app id");

    // Pages of 2: the 3 installed locations, `count` the total before paging.
    let mut listed = Vec::new();
    for skip in [0, 2, 4] {
        let (status, page) = h
            .ghl(
                Method::GET,
                &format!(
                    "/oauth/installedLocations?companyId={}&appId={app_id}&isInstalled=true&skip={skip}&limit=2",
                    info.ghl_company_id
                ),
                &company,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["count"], 3);
        for row in page["locations"].as_array().expect("locations") {
            assert_eq!(row["isInstalled"], true);
            assert!(row["name"].is_string() && row["address"].is_string());
            listed.push(row["_id"].as_str().expect("_id").to_string());
        }
    }
    let expected: Vec<String> = h.locations().iter().map(|l| l.id.clone()).collect();
    assert_eq!(listed, expected);
    // Without the filter the company's location without the app shows too.
    let (_, everything) = h
        .ghl(
            Method::GET,
            &format!(
                "/oauth/installedLocations?companyId={}&appId={app_id}",
                info.ghl_company_id
            ),
            &company,
            None,
        )
        .await;
    assert_eq!(everything["count"], 4);
    let not_installed = everything["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .find(|l| l["isInstalled"] == false)
        .expect("one location without the app")["_id"]
        .as_str()
        .expect("_id")
        .to_string();
    let (status, _) = mint(&h, &company, &not_installed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // companyId and appId are required.
    let (status, body) = h
        .ghl(Method::GET, "/oauth/installedLocations", &company, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The Company token is refused on a location route.
    let (status, body) = h
        .ghl(
            Method::POST,
            "/contacts/search",
            &company,
            Some(json!({"locationId": expected[0], "pageLimit": 1})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some(WRONG_CLASS))
    );

    for location in h.locations() {
        let (status, minted) = mint(&h, &company, &location.id).await;
        assert_eq!(status, StatusCode::OK, "{minted}");
        assert_eq!(minted["locationId"], location.id.as_str());
        assert!(minted.get("refresh_token").is_none(), "{minted}");
        let token = minted["access_token"].as_str().expect("access_token");
        assert_eq!(searched_ids(&h, token, &location.id).await.len(), 40);
        // A location token is no agency token, and works for its own location only.
        let (status, body) = mint(&h, token, &location.id).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(WRONG_CLASS))
        );
        let other = h
            .locations()
            .iter()
            .find(|l| l.id != location.id)
            .expect("another");
        let (status, _) = h
            .ghl(
                Method::POST,
                "/contacts/search",
                token,
                Some(json!({"locationId": other.id, "pageLimit": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    // The first location's own code cannot give a Company token.
    let (status, body) = token_call(
        &h,
        &[
            ("client_id", &info.ghl_client_id),
            ("client_secret", &info.ghl_client_secret),
            ("grant_type", "authorization_code"),
            ("code", &info.ghl_auth_code),
            ("user_type", "Company"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_and_company_tokens_expire_then_a_refresh_and_a_new_mint_work() {
    let h = Harness::start_locations(
        2,
        SandboxOptions {
            token_ttl_secs: 3_600,
            ..options()
        },
    )
    .await;
    let info = h.sandbox.info.clone();
    let grant = company_token(&h).await;
    assert_eq!(grant["expires_in"], 3_600);
    let company = grant["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let location = h.locations()[1].clone();
    let (_, minted) = mint(&h, &company, &location.id).await;
    assert_eq!(minted["expires_in"], 3_600);
    let token = minted["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    assert_eq!(searched_ids(&h, &token, &location.id).await.len(), 40);

    h.control_post("clock/advance?seconds=3601", json!({}))
        .await;
    let search = json!({"locationId": location.id, "pageLimit": 1});
    let (status, _) = h
        .ghl(
            Method::POST,
            "/contacts/search",
            &token,
            Some(search.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the location token expired"
    );
    let (status, _) = mint(&h, &company, &location.id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "so did the company token");

    let refresh = grant["refresh_token"].as_str().expect("refresh_token");
    let (status, refreshed) = token_call(
        &h,
        &[
            ("client_id", &info.ghl_client_id),
            ("client_secret", &info.ghl_client_secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("user_type", "Company"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["userType"], "Company");
    let company = refreshed["access_token"].as_str().expect("access_token");
    let (status, minted) = mint(&h, company, &location.id).await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let token = minted["access_token"].as_str().expect("access_token");
    let (status, _) = h
        .ghl(Method::POST, "/contacts/search", token, Some(search))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Points the harness's pipeline at `location_id` with the agency app (the company code as
/// `auth_code`).
fn use_agency_app(h: &Harness, location_id: &str) {
    let info = &h.sandbox.info;
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline file");
    let auth_line = text
        .lines()
        .find(|l| l.starts_with("auth = "))
        .expect("an auth line");
    let agency = format!(
        r#"auth = {{ kind = "agency_oauth", client_id = "{}", client_secret = "{}", auth_code = "{}" }}"#,
        info.ghl_client_id, info.ghl_client_secret, info.ghl_company_auth_code
    );
    let text = text.replace(auth_line, &agency).replace(
        &format!("location_id = \"{}\"", info.ghl_location_id),
        &format!("location_id = \"{location_id}\""),
    );
    std::fs::write(&h.pipeline, text).expect("rewrite pipeline");
}

/// The pipeline of one location as the orchestrator derives it: the loaded file with another
/// location id and the location's own state directory.
fn location_config(h: &Harness, location_id: &str) -> contactsync::config::PipelineConfig {
    let mut config = contactsync::config::PipelineConfig::load(&h.pipeline).expect("loads");
    config.ghl.location_id = location_id.to_string();
    config.pipeline.state_dir = h.state_dir().join("locations").join(location_id);
    config
}

/// Every contact the client of `config` reads, asserting each is of its location.
async fn client_reads(config: &contactsync::config::PipelineConfig) -> BTreeSet<String> {
    let client =
        contactsync::pipeline::clients::ghl_client(config, system_clock()).expect("client");
    let page = client
        .search_updated_since(None, None, 500, "all".into())
        .await
        .expect("search with the minted token");
    page.contacts
        .iter()
        .map(|c| {
            assert_eq!(c["locationId"], config.ghl.location_id.as_str());
            c["id"].as_str().expect("id").to_string()
        })
        .collect()
}

fn stored_access_token(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tokens: Value = serde_json::from_str(&text).expect("token JSON");
    tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_ghl_stores_the_agency_grant_and_each_location_mints_its_own_token() {
    let h = Harness::start_locations(3, options()).await;
    let ids: Vec<String> = h.locations().iter().map(|l| l.id.clone()).collect();
    use_agency_app(&h, &ids[0]);
    let report = h.run_ok(&["auth", "ghl", "--json"]).await;
    assert_eq!(report["grant"], "Company", "{report}");
    assert_eq!(report["company_id"], h.sandbox.info.ghl_company_id.as_str());
    let listed: Vec<&str> = report["installed_locations"]
        .as_array()
        .expect("installed_locations")
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        listed, ids,
        "every installed location, none without the app"
    );
    let scopes = report["scopes_granted"].to_string();
    assert!(
        scopes.contains("oauth.write") && scopes.contains("oauth.readonly"),
        "{scopes}"
    );
    assert!(h.state_dir().join("tokens/ghl-company.json").exists());

    let root = contactsync::config::PipelineConfig::load(&h.pipeline).expect("loads");
    let discovered: Vec<String> =
        contactsync::pipeline::clients::installed_ghl_locations(&root, system_clock())
            .await
            .expect("discovery")
            .into_iter()
            .map(|l| l.id)
            .collect();
    assert_eq!(discovered, ids);

    let mut tokens = BTreeSet::new();
    let mut everyone = BTreeSet::new();
    for id in &ids {
        let config = location_config(&h, id);
        let read = client_reads(&config).await;
        assert_eq!(read.len(), 40, "location {id} reads its own contacts");
        everyone.extend(read);
        let store = config.state_dir().join("tokens/ghl.json");
        tokens.insert(stored_access_token(&store));
    }
    assert_eq!(everyone.len(), 120, "no contact read by two locations");
    assert_eq!(tokens.len(), 3, "one minted token per location");

    // The binary extracts the location of its file with the agency app, end to end.
    let report = h.run_ok(&["extract", "--json"]).await;
    let run_dir = std::path::PathBuf::from(report["run_dir"].as_str().expect("run_dir"));
    let extracted = common::unique_ids(&run_dir.join("extract/ghl/contacts.parquet"), "id");
    let state = h.control(&format!("state?location={}", ids[0])).await;
    assert_eq!(
        extracted,
        common::state_ids(&state, "ghl", "contacts", "id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_location_token_is_minted_again_after_the_agency_grant_is_refreshed() {
    let h = Harness::start_locations(
        2,
        SandboxOptions {
            token_ttl_secs: 3_600,
            ..options()
        },
    )
    .await;
    let id = h.locations()[1].id.clone();
    use_agency_app(&h, &id);
    h.run_ok(&["auth", "ghl", "--json"]).await;
    let config = location_config(&h, &id);
    assert_eq!(client_reads(&config).await.len(), 40);
    let location_store = config.state_dir().join("tokens/ghl.json");
    let company_store = h.state_dir().join("tokens/ghl-company.json");
    let first_location_token = stored_access_token(&location_store);
    let first_company_token = stored_access_token(&company_store);

    // Both tokens expire on the sandbox's clock while the stored expiry (wall clock) says they
    // are fine: the location token is refused, minting with the company token is refused too,
    // so the agency grant is refreshed, a new location token minted, and the read goes through.
    h.control_post("clock/advance?seconds=3601", json!({}))
        .await;
    let config = location_config(&h, &id);
    assert_eq!(client_reads(&config).await.len(), 40);
    let second_location_token = stored_access_token(&location_store);
    assert_ne!(
        second_location_token, first_location_token,
        "re-minted and stored"
    );
    assert_ne!(
        stored_access_token(&company_store),
        first_company_token,
        "the agency grant was refreshed and its rotation stored"
    );
    let (status, _) = h
        .ghl(
            Method::POST,
            "/contacts/search",
            &second_location_token,
            Some(json!({"locationId": id, "pageLimit": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the stored token is the live one");
}

/// Replaces the harness pipeline's auth line.
fn set_auth(h: &Harness, auth: &str) {
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline file");
    let auth_line = text
        .lines()
        .find(|l| l.starts_with("auth = "))
        .expect("an auth line")
        .to_string();
    std::fs::write(&h.pipeline, text.replace(&auth_line, auth)).expect("rewrite pipeline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_tokens_per_location_each_read_their_own_location() {
    let h = Harness::start_locations(3, options()).await;
    let locations = h.locations().to_vec();
    let table: Vec<String> = locations
        .iter()
        .map(|l| format!("\"{}\" = \"{}\"", l.id, l.private_token))
        .collect();
    set_auth(
        &h,
        &format!(
            "auth = {{ kind = \"private_token\", tokens = {{ {} }} }}",
            table.join(", ")
        ),
    );
    let root = contactsync::config::PipelineConfig::load(&h.pipeline).expect("loads");
    let mut expected: Vec<String> = locations.iter().map(|l| l.id.clone()).collect();
    expected.sort();
    let discovered: Vec<String> =
        contactsync::pipeline::clients::installed_ghl_locations(&root, system_clock())
            .await
            .expect("the table's locations")
            .into_iter()
            .map(|l| l.id)
            .collect();
    assert_eq!(discovered, expected);
    let mut everyone = BTreeSet::new();
    for location in &locations {
        let read = client_reads(&location_config(&h, &location.id)).await;
        assert_eq!(read.len(), 40);
        everyone.extend(read);
    }
    assert_eq!(everyone.len(), 120);
    let error = contactsync::pipeline::clients::ghl_client(
        &location_config(&h, "NotInTheTable"),
        system_clock(),
    )
    .expect_err("no token for that location")
    .to_string();
    assert!(
        error.contains("ghl.auth.tokens has no token for location NotInTheTable"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_token_auth_takes_exactly_one_of_token_and_tokens() {
    let h = Harness::start(options()).await;
    for auth in [
        r#"auth = { kind = "private_token", token = "pit-a", tokens = { "L" = "pit-b" } }"#,
        r#"auth = { kind = "private_token" }"#,
    ] {
        set_auth(&h, auth);
        let error = contactsync::config::PipelineConfig::load(&h.pipeline)
            .expect_err(auth)
            .to_string();
        assert!(
            error.contains("ghl.auth.token") && error.contains("exactly one of token"),
            "{auth}: {error}"
        );
    }
    set_auth(&h, r#"auth = { kind = "private_token", tokens = {} }"#);
    let error = contactsync::config::PipelineConfig::load(&h.pipeline)
        .expect_err("an empty table")
        .to_string();
    assert!(error.contains("ghl.auth.tokens"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_another_process_refreshed_is_read_back_not_refreshed_again() {
    let h = Harness::start_locations(2, options()).await;
    let info = h.sandbox.info.clone();
    let store = h.state_dir().join("tokens/ghl-company.json");
    // Two managers of one token file: two shard processes of one agency.
    let (first, second, granted) = two_runners_of_one_grant(&info, store).await;
    // Both see the token refused; the first refreshes (spending the refresh token both hold).
    first
        .refresh_if_current(granted.access_token.expose())
        .await
        .expect("first refresh");
    let rotated = first.tokens().await.expect("tokens");
    second
        .refresh_if_current(granted.access_token.expose())
        .await
        .expect("the second takes the rotated grant instead of spending the old refresh token");
    let adopted = second.tokens().await.expect("tokens");
    assert_eq!(adopted.access_token.expose(), rotated.access_token.expose());
    assert_eq!(
        adopted.refresh_token.expose(),
        rotated.refresh_token.expose()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_every_page_of_installed_locations() {
    // More locations than one page of the client's (100).
    let h = Harness::start_locations(
        130,
        SandboxOptions {
            contacts: 3,
            messages: 3,
            ..options()
        },
    )
    .await;
    let ids: Vec<String> = h.locations().iter().map(|l| l.id.clone()).collect();
    use_agency_app(&h, &ids[0]);
    h.run_ok(&["auth", "ghl", "--json"]).await;
    let root = contactsync::config::PipelineConfig::load(&h.pipeline).expect("loads");
    let discovered: Vec<String> =
        contactsync::pipeline::clients::installed_ghl_locations(&root, system_clock())
            .await
            .expect("discovery")
            .into_iter()
            .map(|l| l.id)
            .collect();
    assert_eq!(discovered, ids);
    let stats = h.control("stats").await;
    let pages = &stats["requests"]["GET /ghl/oauth/installedLocations"]["200"];
    // `auth ghl` listed them too: two pages each.
    assert_eq!(pages, 4, "{stats}");
}

fn system_clock() -> std::sync::Arc<dyn contactsync::clock::Clock> {
    std::sync::Arc::new(contactsync::clock::SystemClock)
}

/// Runs the binary on `pipeline` and asserts success, naming the machine that failed.
async fn run_ok_on(machine: &str, pipeline: &std::path::Path, args: &[&str]) {
    let out = common::run_binary(pipeline, args).await;
    assert!(
        out.status.success(),
        "machine {machine}: contactsync {args:?} failed with {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_on_two_machines_share_the_agency_grant_in_the_database_and_refresh_it_once() {
    let h = Harness::start_on(
        SandboxOptions {
            locations: 2,
            token_ttl_secs: 3_600,
            ..options()
        },
        common::postgres::StateBackend::Postgres,
    )
    .await;
    let ids: Vec<String> = h.locations().iter().map(|l| l.id.clone()).collect();
    use_agency_app(&h, &ids[0]);
    // Machine B: its own folder and state folder, the same database, another shard (location).
    let machine_b = h.dir.path().join("machine-b");
    std::fs::create_dir_all(&machine_b).expect("machine B's folder");
    let pipeline_b = machine_b.join("pipeline.toml");
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline file");
    std::fs::write(
        &pipeline_b,
        text.replace(
            &format!("location_id = \"{}\"", ids[0]),
            &format!("location_id = \"{}\"", ids[1]),
        ),
    )
    .expect("machine B's pipeline");

    // Machine A authorises once: the grant goes to the database, not to a file.
    let report = h.run_ok(&["auth", "ghl", "--json"]).await;
    assert_eq!(report["grant"], "Company", "{report}");
    let store = report["token_store"].as_str().expect("token_store");
    assert!(store.starts_with("the database postgres://"), "{store}");
    assert!(
        !store.contains(&h.sandbox.info.ghl_client_secret),
        "{store}"
    );
    let company_file = |state: &std::path::Path| state.join("tokens/ghl-company.json");
    assert!(
        !company_file(&h.state_dir()).exists(),
        "no agency token file"
    );

    // Machine B, with no token file, runs on the grant in the database.
    run_ok_on("B", &pipeline_b, &["extract", "--json"]).await;
    run_ok_on("A", &h.pipeline, &["extract", "--json"]).await;
    assert!(!company_file(&machine_b.join("state")).exists());

    // Every token expires on the sandbox's clock; both machines find out at once, from a refused
    // location token, and refresh the agency grant. The sandbox refuses a spent refresh token, as
    // GHL does: both runs succeed only if one machine refreshes and the other uses its rotation.
    h.control_post("clock/advance?seconds=3601", json!({}))
        .await;
    tokio::join!(
        run_ok_on("A", &h.pipeline, &["extract", "--json"]),
        run_ok_on("B", &pipeline_b, &["extract", "--json"]),
    );
    assert!(!company_file(&h.state_dir()).exists());
    assert!(!company_file(&machine_b.join("state")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_holders_of_a_database_grant_refreshing_at_once_spend_its_refresh_token_once() {
    use contactsync::api::auth::GhlTokenManager;
    use contactsync::api::grant_store::GrantStore;
    use contactsync::secret::Secret;
    use contactsync::state::pg_grant::PgGrantTarget;
    let h = Harness::start_locations(2, options()).await;
    let info = h.sandbox.info.clone();
    let db = tokio::task::spawn_blocking(common::postgres::TestDatabase::create)
        .await
        .expect("test database");
    let store = GrantStore::Postgres(std::sync::Arc::new(PgGrantTarget {
        url: Secret::new(db.url.clone()),
        pipeline: "agency".into(),
    }));
    // Two managers of one database row: two runners on two machines.
    let (first, second, granted) = two_runners_of_one_grant(&info, store.clone()).await;
    // Both see the token refused at once while a third runner holds the grant's lock: neither
    // refreshes before it is released; then one refreshes and the other, reading the row again
    // under the lock, uses that rotation (the sandbox refuses a spent refresh token, as GHL does).
    let held = store.lock().await.expect("the third runner's lock");
    let (first, second) = (std::sync::Arc::new(first), std::sync::Arc::new(second));
    let rejected = granted.access_token.expose().to_string();
    let refresh = |manager: &std::sync::Arc<GhlTokenManager>| {
        let (manager, rejected) = (manager.clone(), rejected.clone());
        tokio::spawn(async move { manager.refresh_if_current(&rejected).await })
    };
    let (a, b) = (refresh(&first), refresh(&second));
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(
        !a.is_finished() && !b.is_finished(),
        "a refresh waits for the grant's lock"
    );
    drop(held);
    a.await.expect("join").expect("first refresh");
    b.await.expect("join").expect("second refresh");
    let rejected = rejected.as_str();
    let (one, two) = (
        first.tokens().await.expect("tokens"),
        second.tokens().await.expect("tokens"),
    );
    assert_ne!(one.access_token.expose(), rejected);
    assert_eq!(one.access_token.expose(), two.access_token.expose());
    assert_eq!(one.refresh_token.expose(), two.refresh_token.expose());
    let stored = store.read().await.expect("stored grant");
    assert_eq!(stored.refresh_token.expose(), one.refresh_token.expose());
}

/// Two company-grant managers over one store (two runners of one agency), after the first has
/// exchanged the company's code: the second must read back the grant the first stored.
async fn two_runners_of_one_grant(
    info: &contactsync::sandbox::ReadyInfo,
    store: impl Into<contactsync::api::grant_store::GrantStore> + Clone,
) -> (
    contactsync::api::auth::GhlTokenManager,
    contactsync::api::auth::GhlTokenManager,
    contactsync::api::auth::StoredTokens,
) {
    let manager = || company_grant_manager(info, store.clone());
    let (first, second) = (manager(), manager());
    let granted = first
        .exchange_code(&contactsync::secret::Secret::new(
            info.ghl_company_auth_code.clone(),
        ))
        .await
        .expect("company grant");
    assert_eq!(
        second.access_token().await.expect("read").expose(),
        granted.access_token.expose(),
        "the second reads the grant the first stored"
    );
    (first, second, granted)
}

/// A token manager of the sandbox agency's company grant kept in `store`: one per process (or
/// machine) of the agency.
fn company_grant_manager(
    info: &contactsync::sandbox::ReadyInfo,
    store: impl Into<contactsync::api::grant_store::GrantStore>,
) -> contactsync::api::auth::GhlTokenManager {
    contactsync::api::auth::GhlTokenManager::new(
        &info.ghl_base_url,
        &info.ghl_client_id,
        &contactsync::secret::Secret::new(info.ghl_client_secret.clone()),
        store,
        std::time::Duration::from_secs(10),
        contactsync::api::retry::RetryPolicy::from_config(
            &contactsync::config::HttpConfig::default(),
        ),
        system_clock(),
    )
    .expect("manager")
    .for_company()
}
