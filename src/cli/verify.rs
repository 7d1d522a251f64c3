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
    /// session, the key inside the file for a file.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
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

/// Checks `loaded` against `key` (given), else the key its source vouches for.
pub fn check(loaded: &Loaded, key: Option<&VerifyingKey>) -> Result<Outcome, Failure> {
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
            let note = (loaded.origin != "gateway").then(|| {
                format!(
                    "the key was taken from the file itself; compare {wanted} with the gateway's \
                     key (GET /v1/keys) or pin it with --key"
                )
            });
            (k, note)
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

pub fn run(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let key = args.key.as_deref().map(parse_key_arg).transpose()?;
    let rt = super::runtime()?;
    let loaded = rt.block_on(source::load(&args.gateway, &args.what));
    rt.shutdown_background();
    let loaded = loaded?;
    let outcome = check(&loaded, key.as_ref())?;
    match args.output {
        OutputFormat::Json => println!("{}", to_json(&outcome)),
        OutputFormat::Text => {
            println!("{}", summary(&outcome));
            if let Some(n) = &outcome.note {
                crate::client::session::say(&format!("note: {n}"));
            }
        }
    }
    Ok(if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
