//! `hoopx verify SESSION|FILE|last [--key PUBKEY]`: proves a recording unaltered, offline.

use std::process::ExitCode;

use clap::Args;
use ed25519_dalek::VerifyingKey;
use serde_json::json;

use super::source::{self, Loaded};
use super::{code, Failure, GatewayArgs, OutputFormat};
use crate::recording::chain;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A session id, `last`, or an exported file (`hoopx replay --format json|cast|cast3`).
    #[arg(value_name = "SESSION|FILE|last")]
    pub what: String,
    /// The public key to trust: base64 of the 32 key bytes, a PEM block, or a file holding
    /// either (the gateway serves its keys at /v1/keys). Without it: the gateway's key for a
    /// session; for a file, its key only if it is the configured gateway's or one of this
    /// machine's gateways'.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
    /// `text` for people, `json` for scripts and agents (shapes: docs/JSON.md).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The outcome of checking a loaded recording.
pub struct Outcome {
    pub result: Result<chain::Verified, chain::Failure>,
    /// Said next to the result: where the trusted key came from, when that matters.
    pub note: Option<String>,
}

fn parse_key_arg(arg: &str) -> Result<VerifyingKey, Failure> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) if !std::path::Path::new(arg).exists() => arg.to_string(),
        Err(e) => {
            return Err(Failure::new(
                code::USAGE,
                format!("cannot read key file {arg}: {e}"),
            ))
        }
    };
    chain::parse_public_key(&text).map_err(|e| {
        Failure::new(code::USAGE, format!("--key: {e}"))
            .hint("pass the base64 `public_key` from the gateway's /v1/keys, a PEM PUBLIC KEY block, or a file with either")
    })
}

/// Checks `loaded` against `key` (given), else the key its source vouches for: the gateway's
/// for a session, one of `trusted` for a file.
pub fn check(
    loaded: &Loaded,
    key: Option<&VerifyingKey>,
    trusted: &[VerifyingKey],
) -> Result<Outcome, Failure> {
    let rec = &loaded.recording;
    let (key, note) = match key {
        Some(k) => (*k, None),
        None => {
            let Some(wanted) = rec.checkpoints.first().map(|c| c.key_id.clone()) else {
                return Ok(Outcome {
                    result: Err(chain::Failure {
                        event: None,
                        reason:
                            "the recording carries no signed checkpoint, so nothing vouches for it"
                                .into(),
                    }),
                    note: None,
                });
            };
            let Some(info) = rec.keys.iter().find(|k| k.id == wanted) else {
                return Ok(Outcome {
                    result: Err(chain::Failure {
                        event: None,
                        reason: format!(
                            "it is signed by key {wanted}, which {} does not list",
                            if loaded.origin == "gateway" {
                                "the gateway"
                            } else {
                                "the file"
                            }
                        ),
                    }),
                    note: Some("pass the signer's public key with --key".into()),
                });
            };
            let k = chain::parse_public_key(&info.public_key).map_err(|e| {
                Failure::new(code::PROTOCOL, format!("key {wanted} is unreadable: {e}"))
            })?;
            // A file's own key vouches for nothing (whoever rewrote the file could have
            // re-signed it): it must be a key the caller trusts.
            if loaded.origin != "gateway" && !trusted.contains(&k) {
                return Ok(Outcome {
                    result: Err(chain::Failure {
                        event: None,
                        reason: format!(
                            "it is signed by key {wanted}, which is not a key you trust: anyone who \
                             rewrote the file could have signed it"
                        ),
                    }),
                    note: Some(
                        "pass the gateway's public key with --key (GET /v1/keys on the gateway, no token \
                         needed), or point HOOPX_GATEWAY at the gateway that recorded it"
                            .into(),
                    ),
                });
            }
            (k, None)
        }
    };
    Ok(Outcome {
        result: chain::verify(rec, loaded.hashes.as_deref(), &key),
        note,
    })
}

/// One line for people: `OK: …` or `FAILED: …`.
pub fn summary(o: &Outcome) -> String {
    match &o.result {
        Ok(v) => {
            let mut s = format!("OK: {} events, signed by {}", v.events, v.key_id);
            if !v.complete {
                s.push_str(&format!(
                    "; the session has not closed yet ({} event(s) after the last checkpoint are not signed yet)",
                    v.unsigned_tail
                ));
            }
            s
        }
        Err(f) => format!("FAILED: {f}"),
    }
}

pub fn to_json(o: &Outcome) -> serde_json::Value {
    match &o.result {
        Ok(v) => json!({
            "ok": true,
            "events": v.events,
            "key_id": v.key_id,
            "complete": v.complete,
            "unsigned_tail": v.unsigned_tail,
            "note": o.note,
        }),
        Err(f) => json!({
            "ok": false,
            "event": f.event,
            "reason": f.reason,
            "note": o.note,
        }),
    }
}

/// Keys that vouch for a file without `--key`: the configured gateway's (from /v1/keys) and
/// the keys of gateways that ran on this machine under this user (embedded or served).
async fn trusted_keys(args: &GatewayArgs) -> Vec<VerifyingKey> {
    let mut keys = vec![];
    if let Some(dir) = crate::dirs::data_dir() {
        for name in ["embedded-signing.pem", "gateway-signing.pem"] {
            if let Some(k) = crate::gateway::signing::public_key_of(&dir.join(name)) {
                keys.push(k);
            }
        }
    }
    if let Ok(r) = super::settings::resolve(args, None) {
        if let Some(url) = &r.gateway {
            if let Ok(client) = crate::client::GatewayClient::new(url, r.token.clone()) {
                match client.keys().await {
                    Ok(list) => keys.extend(
                        list.iter()
                            .filter_map(|k| chain::parse_public_key(&k.public_key).ok()),
                    ),
                    Err(e) => crate::client::session::say(&format!(
                        "note: cannot fetch the gateway's keys to check the file against: {e}"
                    )),
                }
            }
        }
    }
    keys
}

pub fn run(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let key = args.key.as_deref().map(parse_key_arg).transpose()?;
    let rt = super::runtime()?;
    let loaded = rt.block_on(async {
        let loaded = source::load(&args.gateway, &args.what).await?;
        let trusted = if key.is_none() && loaded.origin != "gateway" {
            trusted_keys(&args.gateway).await
        } else {
            vec![]
        };
        Ok::<_, Failure>((loaded, trusted))
    });
    rt.shutdown_background();
    let (loaded, trusted) = loaded?;
    let outcome = check(&loaded, key.as_ref(), &trusted)?;
    let text = match args.output {
        OutputFormat::Json => to_json(&outcome).to_string(),
        OutputFormat::Text => summary(&outcome),
    };
    super::print_line(&text)?;
    if let (OutputFormat::Text, Some(n)) = (args.output, &outcome.note) {
        crate::client::session::say(&format!("note: {n}"));
    }
    Ok(if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
