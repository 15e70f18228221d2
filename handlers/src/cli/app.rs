//! `connect-events app serve`: the agent-workspace app and its API on a local address, through
//! the same API code the Lambda runs, on the embedded backend by default (contacts from the local
//! contact model: `<state>/connect/contacts/<id>.json` DescribeContact answers, `<state>/connect/users/<id>.json`
//! DescribeUser answers). Tokens are verified against a JWKS file.
//!
//! Environment: `APP_JWKS_FILE`, `APP_JWT_ISSUER`, `APP_JWT_AUDIENCE` (required),
//! `APP_USERNAME_CLAIM` (default `username`), `APP_FRAME_ANCESTORS` (space-separated origins allowed
//! to frame the app, e.g. `https://example.my.connect.aws`), `APP_CONNECT_SRC` (extra origins the page
//! may call, e.g. the identity provider's token endpoint), `APP_OIDC_CLIENT_ID` (default the
//! audience), `APP_OIDC_SCOPE` (default `openid`), `CONNECT_INSTANCE_ID` (required).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{settings, BackendArgs, CliResult, Failure};
use crate::app::{assets::Assets, jwt::Verifier, serve, AppConfig};
use crate::backend::Backend;

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Serve the app and its API (prints `listening on http://ADDR` once ready).
    Serve {
        /// Address to listen on (a loopback address unless you mean otherwise).
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: String,
        /// The built front end (`npm --prefix handlers/web run build`); default `APP_ASSETS_DIR`,
        /// then `handlers/web/dist` when it exists, else a page that says how to build it.
        #[arg(long)]
        assets: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

fn required(name: &str) -> Result<String, Failure> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Failure::usage(format!("{name} is not set")))
}

/// Where the front end was built, in this checkout.
const BUILT_HERE: &str = "handlers/web/dist";

fn assets(dir: Option<PathBuf>) -> Result<Assets, Failure> {
    let dir = dir.or_else(|| std::env::var_os("APP_ASSETS_DIR").map(PathBuf::from));
    let assets = Assets::locate(dir.as_deref(), Path::new(BUILT_HERE))
        .map_err(|e| Failure::usage(format!("--assets: {e}")))?;
    if !assets.is_built() {
        eprintln!(
            "connect-events: no front end built ({BUILT_HERE}): serving the API and a placeholder page"
        );
    }
    Ok(assets)
}

pub async fn run(cmd: AppCommand) -> CliResult {
    let AppCommand::Serve {
        addr,
        assets: assets_dir,
        backend,
    } = cmd;
    crate::lambda::init_tracing_to(std::io::stderr);
    let settings = settings()?;
    let jwks_path = required("APP_JWKS_FILE")?;
    let jwks: serde_json::Value = std::fs::read(&jwks_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| Failure::usage(format!("APP_JWKS_FILE={jwks_path}: {e}")))?;
    let claim = std::env::var("APP_USERNAME_CLAIM").unwrap_or_else(|_| "username".into());
    let verifier = Verifier::new(
        &jwks,
        &required("APP_JWT_ISSUER")?,
        &required("APP_JWT_AUDIENCE")?,
        &claim,
    )
    .map_err(|e| Failure::usage(format!("APP_JWKS_FILE={jwks_path}: {e}")))?;
    let config = AppConfig::from_env(required("CONNECT_INSTANCE_ID")?);
    let assets = assets(assets_dir)?;
    let b = Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Failure::usage(format!("--addr {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::failed(e.to_string()))?;
    println!("listening on http://{bound}");
    let _ = std::io::stdout().flush();
    let Backend { caps, local } = b;
    let local = local.map(Arc::new);
    let save: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(local) = &local {
            if let Err(e) = local.save() {
                eprintln!("connect-events: the state was NOT saved: {e}");
            }
        }
    });
    serve(
        listener,
        Arc::new(caps.deny_list),
        Arc::new(verifier),
        Arc::new(config),
        Arc::new(assets),
        save,
    )
    .await
    .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
