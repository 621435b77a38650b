//! GitHub App authentication: test keys and the check of an app's JWT.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::BTreeMap;

/// A test GitHub App's RSA private key (PKCS#1 PEM, as GitHub generates them). Test use only.
pub const TEST_APP_PRIVATE_KEY: &str = include_str!("test_app_key.pem");

/// The public half of [`TEST_APP_PRIVATE_KEY`], to register with [`super::FakeGithub::add_app`].
pub const TEST_APP_PUBLIC_KEY: &str = include_str!("test_app_key.pub.pem");

/// Another RSA private key that no fake app knows, for tests of a wrong key. Test use only.
pub const UNKNOWN_PRIVATE_KEY: &str = include_str!("stranger_key.pem");

/// The claims GitHub reads from an app's JWT.
#[derive(serde::Deserialize)]
struct Claims {
    /// The app ID (a number) or the app's client ID (a string).
    iss: Value,
}

/// The app that signed `jwt`: its RS256 signature verifies against that app's public key, it has
/// not expired, and its `iss` is that app's ID. Answers GitHub's message otherwise.
pub(super) fn verify(apps: &BTreeMap<u64, String>, jwt: &str) -> Result<u64, &'static str> {
    let mut validation = Validation::new(Algorithm::RS256);
    // `iss` is checked below: the library only understands string issuers, GitHub's is a number.
    validation.set_required_spec_claims(&["exp"]);
    let mut signed_by_a_known_key = false;
    for (&app_id, public_key) in apps {
        let Ok(key) = DecodingKey::from_rsa_pem(public_key.as_bytes()) else {
            continue;
        };
        let Ok(data) = jsonwebtoken::decode::<Claims>(jwt, &key, &validation) else {
            continue;
        };
        signed_by_a_known_key = true;
        let iss = &data.claims.iss;
        if iss.as_u64() == Some(app_id) || iss.as_str() == Some(app_id.to_string().as_str()) {
            return Ok(app_id);
        }
    }
    Err(if signed_by_a_known_key {
        "Integration not found"
    } else {
        "A JSON web token could not be decoded"
    })
}
