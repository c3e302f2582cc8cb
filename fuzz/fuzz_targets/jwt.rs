//! `JwtAuthenticator` (feature `jwt` of rtdash-transport) on untrusted tokens.
//!
//! Input: the first byte chooses a mode, the rest is its material.
//! - mode 0: the rest is the token, as a client would send it;
//! - mode 1: the rest is a claims object, signed (HS256) with ANOTHER secret: a forgery;
//! - mode 2: the rest is `header 0xFF claims`, signed with another secret: a forgery with a
//!   header of the attacker's choice (`"alg": "none"`, another algorithm...);
//! - mode 3: the rest is a claims object signed with the right secret: claim parsing.
//!
//! Checks: never a panic; a forgery is never accepted; every accepted token carries a valid
//! HMAC-SHA256 signature by the server's secret, checked here independently of
//! `jsonwebtoken`, and its subject is the token's `sub`.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use rtdash_transport::{Authenticator, JwtAuthenticator};
use sha2::Sha256;

const SECRET: &[u8] = b"the server's secret, 32 bytes ok";
const FORGER: &[u8] = b"a forger's guess at the secret!!";
const HS256_HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

fn mac(secret: &[u8], signing_input: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256>>::new_from_slice(secret).unwrap_or_else(|e| panic!("hmac: {e}"));
    m.update(signing_input);
    m.finalize().into_bytes().to_vec()
}

/// A compact JWS of `header` and `claims` signed with `secret`.
fn sign(secret: &[u8], header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, input.as_bytes()));
    format!("{input}.{sig}")
}

/// The independent check: `token` is `header.claims.signature` with an HMAC-SHA256
/// signature of `header.claims` by `SECRET`; returns the claims.
fn verified_claims(token: &str) -> serde_json::Value {
    let (input, sig) = token
        .rsplit_once('.')
        .unwrap_or_else(|| panic!("accepted a token without a signature: {token:?}"));
    let sig = URL_SAFE_NO_PAD
        .decode(sig.trim_end_matches('='))
        .unwrap_or_else(|e| {
            panic!("accepted a token whose signature is not base64url ({e}): {token:?}")
        });
    assert_eq!(
        sig,
        mac(SECRET, input.as_bytes()),
        "accepted a token not signed with the secret: {token:?}"
    );
    let claims = input.split('.').nth(1).unwrap_or_default();
    let claims = URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("accepted claims that are not base64url ({e}): {token:?}"));
    // serde_json skips an ignored field's string without checking its UTF-8, so read
    // the claims leniently: only `sub` is compared.
    serde_json::from_str(&String::from_utf8_lossy(&claims))
        .unwrap_or_else(|e| panic!("accepted claims that are not JSON ({e}): {token:?}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let auth = JwtAuthenticator::hs256(SECRET);
    let (token, forged) = match mode % 4 {
        0 => (String::from_utf8_lossy(rest).into_owned(), false),
        1 => (sign(FORGER, HS256_HEADER, rest), true),
        2 => {
            let mut parts = rest.splitn(2, |&b| b == 0xFF);
            let header = parts.next().unwrap_or_default();
            let claims = parts.next().unwrap_or_default();
            (sign(FORGER, header, claims), true)
        }
        // Claims signed with the right key. The seed `signed_exp_u64_max` (an `exp` past
        // what `SystemTime` holds) panicked before rtdash-transport refused it.
        _ => (sign(SECRET, HS256_HEADER, rest), false),
    };
    let verdict = futures::executor::block_on(auth.authenticate(&token));
    if let Ok(principal) = verdict {
        assert!(
            !forged,
            "accepted a token signed with another key: {token:?}"
        );
        let claims = verified_claims(&token);
        assert_eq!(
            claims["sub"].as_str(),
            Some(principal.subject()),
            "the principal is not the token's subject: {token:?}"
        );
    }
});
