//! `contactsync auth ghl`: exchange an authorization code for tokens kept in the state directory.

use super::stage::load_pipeline;
use super::{AuthApi, AuthArgs, CommandError, CommandReport};
use crate::config::GhlAuthConfig;
use crate::exit_code::ExitCode;
use crate::secret::Secret;

pub(super) async fn run(args: AuthArgs) -> Result<ExitCode, CommandError> {
    let AuthApi::Ghl = args.api;
    let config = load_pipeline(&args.stage)?;
    let code = match (&args.code, &config.ghl.auth) {
        (Some(code), _) => Secret::new(code.clone()),
        (
            None,
            GhlAuthConfig::Oauth {
                auth_code: Some(code),
                ..
            },
        ) => code.clone(),
        (None, GhlAuthConfig::Oauth { .. }) => {
            return Err(CommandError {
                code: ExitCode::BadConfig,
                error: anyhow::anyhow!(
                    "no authorization code: pass --code or set ghl.auth.auth_code in {}",
                    args.stage.pipeline.display()
                ),
            });
        }
        (None, GhlAuthConfig::PrivateToken { .. }) => {
            return Err(CommandError {
                code: ExitCode::BadConfig,
                error: anyhow::anyhow!(
                    "ghl.auth.kind is private_token in {}: a private integration token needs no auth step",
                    args.stage.pipeline.display()
                ),
            });
        }
    };
    let client = crate::pipeline::clients::ghl_client(&config)?;
    let manager = client
        .token_manager()
        .expect("OAuth config always has a token manager");
    let tokens = manager.exchange_code(&code).await?;
    if args.stage.json {
        let mut report = CommandReport {
            command: "auth".into(),
            ..CommandReport::default()
        };
        report
            .counts
            .insert("scopes".into(), tokens.scopes().len() as u64);
        report.print();
    } else {
        eprintln!(
            "GHL tokens stored in {} (scopes: {}; access token expires {})",
            manager.store_path().display(),
            tokens.scope,
            tokens.expires_at
        );
    }
    Ok(ExitCode::Ok)
}
