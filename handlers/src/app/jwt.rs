//! Verification of the agent app's bearer tokens (RS256 JWTs) against a JWKS, for
//! `connect-events app serve`. In AWS the HTTP API's JWT authorizer does this before the function
//! runs; locally this is the same check: signature (RS256, key by `kid`), `iss`, `aud` (or
//! `client_id`, as Cognito access tokens carry it), `exp` and `nbf` with 60 s of leeway, and the
//! username claim.

use std::collections::HashMap;

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// Clock skew tolerated on `exp` / `nbf`.
pub const LEEWAY_S: i64 = 60;

/// Why a token was refused (never echoes the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(pub &'static str);

/// The keys and the claims a token must carry.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<String, (Vec<u8>, Vec<u8>)>,
    issuer: String,
    audience: String,
    username_claim: String,
}

impl Verifier {
    /// From a JWKS document (`{"keys": [{"kty": "RSA", "kid", "n", "e"}]}`); non-RSA keys are skipped.
    pub fn new(
        jwks: &Value,
        issuer: &str,
        audience: &str,
        username_claim: &str,
    ) -> Result<Verifier, String> {
        let mut keys = HashMap::new();
        for key in jwks["keys"].as_array().ok_or("JWKS without `keys`")? {
            if key["kty"] != "RSA" {
                continue;
            }
            let field = |name: &str| {
                key[name]
                    .as_str()
                    .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                    .ok_or_else(|| format!("JWKS key without a base64url `{name}`"))
            };
            let kid = key["kid"].as_str().unwrap_or_default().to_string();
            keys.insert(kid, (field("n")?, field("e")?));
        }
        if keys.is_empty() {
            return Err("JWKS has no RSA key".into());
        }
        Ok(Verifier {
            keys,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            username_claim: username_claim.to_string(),
        })
    }

    /// The username of a valid token at `now` (epoch seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<String, TokenError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError("not a JWS compact token"));
        };
        let decode = |p: &str| {
            URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| TokenError("bad base64url"))
        };
        let header: Value =
            serde_json::from_slice(&decode(head)?).map_err(|_| TokenError("bad header"))?;
        if header["alg"] != "RS256" {
            return Err(TokenError("unsupported alg (RS256 only)"));
        }
        let kid = header["kid"].as_str().unwrap_or_default();
        let (n, e) = self.keys.get(kid).ok_or(TokenError("unknown key id"))?;
        let signed = &token[..head.len() + 1 + body.len()];
        RsaPublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &decode(sig)?,
        )
        .map_err(|_| TokenError("bad signature"))?;
        let claims: Value =
            serde_json::from_slice(&decode(body)?).map_err(|_| TokenError("bad claims"))?;
        if claims["iss"] != self.issuer.as_str() {
            return Err(TokenError("wrong issuer"));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(a) => *a == self.audience,
            Value::Array(list) => list.iter().any(|a| *a == self.audience.as_str()),
            _ => claims["client_id"] == self.audience.as_str(),
        };
        if !audience_ok {
            return Err(TokenError("wrong audience"));
        }
        let exp = claims["exp"].as_i64().ok_or(TokenError("no exp"))?;
        if now > exp + LEEWAY_S {
            return Err(TokenError("expired"));
        }
        if claims["nbf"]
            .as_i64()
            .is_some_and(|nbf| now + LEEWAY_S < nbf)
        {
            return Err(TokenError("not yet valid"));
        }
        claims[self.username_claim.as_str()]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .ok_or(TokenError("no username claim"))
    }
}
