//! Licenses: Ed25519-signed JWS tokens verified offline against the public key compiled into
//! the binary (`ROTOR_LICENSE_PUBKEY` at build time replaces the vendor key). A license grants
//! features (e.g. `load_balancing`) and may cap the number of workspaces; its expiry is checked
//! on every use, so a license that lapses while the server runs stops granting at once.

use crate::config::Deployment;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::RwLock;
use utoipa::ToSchema;

/// The feature a license must list for `ROTOR_DEPLOYMENT=saas` (see SECURITY.md); it grants no
/// workspace feature by itself.
pub const SAAS: &str = "saas";

/// The vendor's license public key (base64url of the raw 32 bytes). Its private half is kept
/// by the vendor, never in this repository.
pub const VENDOR_PUBLIC_KEY: &str = "2K7-io_cO8MaJzFKm1te6Y0dryg04S0Lct8RJbbM5Sc";

/// The public key this binary trusts.
pub fn trusted_public_key() -> &'static str {
    option_env!("ROTOR_BUILD_LICENSE_PUBKEY").unwrap_or(VENDOR_PUBLIC_KEY)
}

/// A short id of a public key (`lk_` + 16 hex digits of its SHA-256), shown in the status.
pub fn key_id(public_b64url: &str) -> String {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(public_b64url.trim_end_matches('='))
        .unwrap_or_default();
    let digest = Sha256::digest(&raw);
    format!(
        "lk_{}",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A license's claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Licensee.
    pub sub: String,
    /// Edition, e.g. `enterprise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Granted features.
    #[serde(default)]
    pub features: Vec<String>,
    /// Most workspaces the instance may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workspaces: Option<u64>,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Claims {
    /// Expiry as a timestamp.
    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.exp, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// What verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the trusted key and not expired.
    Valid(Claims),
    /// Signed by the trusted key but past its `exp`.
    Expired(Claims),
    /// Not a license signed by the trusted key.
    Invalid,
}

/// Verifies tokens against one public key, EdDSA only.
pub struct Verifier {
    key: DecodingKey,
    key_id: String,
    validation: Validation,
}

impl Verifier {
    /// A verifier for a base64url public key.
    pub fn new(public_b64url: &str) -> anyhow::Result<Self> {
        let key = DecodingKey::from_ed_components(public_b64url.trim_end_matches('='))
            .map_err(|e| anyhow::anyhow!("invalid license public key: {e}"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            key,
            key_id: key_id(public_b64url),
            validation,
        })
    }

    /// The verifier for the compiled-in key.
    pub fn trusted() -> anyhow::Result<Self> {
        Self::new(trusted_public_key())
    }

    /// Id of the trusted key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks signature, algorithm and claims; expiry against `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Verdict {
        match jsonwebtoken::decode::<Claims>(token.trim(), &self.key, &self.validation) {
            Ok(data) if data.claims.exp > now.timestamp() => Verdict::Valid(data.claims),
            Ok(data) => Verdict::Expired(data.claims),
            Err(_) => Verdict::Invalid,
        }
    }
}

/// Signs a license with a PKCS#8 PEM Ed25519 private key (the vendor tool).
pub fn issue(private_pem: &[u8], claims: &Claims) -> anyhow::Result<String> {
    let key = EncodingKey::from_ed_pem(private_pem)
        .map_err(|e| anyhow::anyhow!("invalid private key: {e}"))?;
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key)
        .map_err(|e| anyhow::anyhow!("signing failed: {e}"))
}

/// A new key pair: the private key as an RFC 8410 PKCS#8 v1 PEM (what `openssl genpkey
/// -algorithm ed25519` writes, readable by `openssl pkey` and every crypto library) and the
/// public key as base64url.
pub fn keygen() -> anyhow::Result<(zeroize::Zeroizing<String>, String)> {
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey, KeypairBytes};
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    // Without the public key the encoding is version 1 (OneAsymmetricKey v2 adds it, and
    // OpenSSL 3.0 and Python's cryptography refuse that form).
    let pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
    let public =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    Ok((pem, public))
}

/// The license status shown to instance administrators.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LicenseStatus {
    /// `none`, `valid`, `expired` or `invalid`.
    #[schema(example = "valid")]
    pub status: &'static str,
    /// Licensee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licensee: Option<String>,
    /// Edition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Granted features.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Workspace cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_workspaces: Option<u64>,
    /// Id of the public key this binary trusts.
    pub trusted_key_id: String,
    /// `self-hosted` (features come from the license) or `saas` (workspace plans grant
    /// them too), so a console knows whether plans can be set.
    #[schema(example = "self-hosted")]
    pub deployment: &'static str,
}

/// The instance's license: the active claims (if any) and a startup problem to report
/// when there is none.
pub struct LicenseState {
    verifier: Verifier,
    active: RwLock<Option<Claims>>,
    problem: RwLock<Option<&'static str>>,
}

impl LicenseState {
    /// No license yet.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            active: RwLock::new(None),
            problem: RwLock::new(None),
        }
    }

    /// The verifier of the trusted key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Makes `claims` the active license.
    pub fn activate(&self, claims: Claims) {
        if let Ok(mut a) = self.active.write() {
            *a = Some(claims);
        }
    }

    /// Remembers why `ROTOR_LICENSE` was not used (`expired` or `invalid`).
    pub fn set_problem(&self, problem: &'static str) {
        if let Ok(mut p) = self.problem.write() {
            *p = Some(problem);
        }
    }

    fn active(&self) -> Option<Claims> {
        self.active.read().ok().and_then(|a| a.clone())
    }

    /// `read` of the claims of a license valid at `now`, read in place (the gateway asks on
    /// every request: no clone of the claims).
    fn valid_claims<R>(&self, now: DateTime<Utc>, read: impl FnOnce(&Claims) -> R) -> Option<R> {
        let active = self.active.read().ok()?;
        active
            .as_ref()
            .filter(|c| c.exp > now.timestamp())
            .map(read)
    }

    /// Whether a valid license grants `feature` at `now`.
    pub fn grants(&self, feature: &str, now: DateTime<Utc>) -> bool {
        self.valid_claims(now, |c| c.features.iter().any(|f| f == feature))
            .unwrap_or(false)
    }

    /// The workspace cap of a valid license.
    pub fn max_workspaces(&self, now: DateTime<Utc>) -> Option<u64> {
        self.valid_claims(now, |c| c.max_workspaces).flatten()
    }

    /// The status at `now` on an instance of kind `deployment`.
    pub fn status(&self, now: DateTime<Utc>, deployment: Deployment) -> LicenseStatus {
        let trusted_key_id = self.verifier.key_id().to_owned();
        let deployment = deployment.as_str();
        match self.active() {
            Some(c) => LicenseStatus {
                status: if c.exp > now.timestamp() {
                    "valid"
                } else {
                    "expired"
                },
                licensee: Some(c.sub.clone()),
                edition: c.edition.clone(),
                features: Some(c.features.clone()),
                expires_at: Some(c.expires_at()),
                max_workspaces: c.max_workspaces,
                trusted_key_id,
                deployment,
            },
            None => LicenseStatus {
                status: self.problem.read().ok().and_then(|p| *p).unwrap_or("none"),
                licensee: None,
                edition: None,
                features: None,
                expires_at: None,
                max_workspaces: None,
                trusted_key_id,
                deployment,
            },
        }
    }
}

/// Whether `token` is a valid license that does not list `saas`: in saas mode such a license
/// is refused rather than installed, since once active it would stop the instance from
/// starting again.
pub fn lacks_saas(verifier: &Verifier, token: &str) -> bool {
    matches!(verifier.verify(token, Utc::now()), Verdict::Valid(c) if !c.features.iter().any(|f| f == SAAS))
}

/// Reads `ROTOR_LICENSE`: a token, or the path of a file holding one.
pub fn read_setting(value: &str) -> String {
    let path = std::path::Path::new(value);
    if !value.contains('.') || path.is_file() {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().to_owned();
        }
    }
    value.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "ACME".into(),
            edition: None,
            features: vec!["load_balancing".into()],
            max_workspaces: Some(2),
            iat: 0,
            exp,
            jti: None,
        }
    }

    #[test]
    fn issue_verify_round_trip_and_rejections() {
        let (pem, public) = keygen().unwrap();
        let v = Verifier::new(&public).unwrap();
        let now = Utc::now();
        let token = issue(pem.as_bytes(), &claims(now.timestamp() + 60)).unwrap();
        assert!(matches!(v.verify(&token, now), Verdict::Valid(c) if c.max_workspaces == Some(2)));
        let old = issue(pem.as_bytes(), &claims(now.timestamp() - 1)).unwrap();
        assert!(matches!(v.verify(&old, now), Verdict::Expired(_)));
        let (other_pem, _) = keygen().unwrap();
        let forged = issue(other_pem.as_bytes(), &claims(now.timestamp() + 60)).unwrap();
        assert_eq!(v.verify(&forged, now), Verdict::Invalid);
        // Tampered payload.
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(now.timestamp() + 60);
        c.max_workspaces = Some(1000);
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&c).unwrap());
        assert_eq!(
            v.verify(&format!("{}.{payload}.{}", parts[0], parts[2]), now),
            Verdict::Invalid
        );
        // Another algorithm (HS256 keyed with the public key) is refused.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(now.timestamp() + 60),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hs, now), Verdict::Invalid);
    }

    #[test]
    fn state_follows_expiry_at_read_time() {
        let (_, public) = keygen().unwrap();
        let s = LicenseState::new(Verifier::new(&public).unwrap());
        let now = Utc::now();
        assert_eq!(s.status(now, Deployment::SelfHosted).status, "none");
        s.activate(claims(now.timestamp() + 10));
        assert!(s.grants("load_balancing", now));
        assert_eq!(s.max_workspaces(now), Some(2));
        let later = now + chrono::Duration::seconds(11);
        assert!(!s.grants("load_balancing", later));
        assert_eq!(s.status(later, Deployment::SelfHosted).status, "expired");
        assert_eq!(s.max_workspaces(later), None);
    }
}

/// Why a token was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Signed by the trusted key but expired.
    Expired,
    /// Not a license of the trusted key.
    Invalid,
}

/// Verifies and stores a license, then makes it the active one.
pub async fn install(
    db: &sqlx::PgPool,
    state: &LicenseState,
    token: &str,
    actor: Option<rotor_storage::UserId>,
) -> Result<Result<Claims, Rejected>, rotor_storage::Error> {
    let claims = match state.verifier().verify(token, Utc::now()) {
        Verdict::Valid(c) => c,
        Verdict::Expired(_) => return Ok(Err(Rejected::Expired)),
        Verdict::Invalid => return Ok(Err(Rejected::Invalid)),
    };
    let details = serde_json::json!({
        "licensee": claims.sub,
        "edition": claims.edition,
        "features": claims.features,
        "max_workspaces": claims.max_workspaces,
        "expires_at": claims.expires_at(),
        "jti": claims.jti,
    });
    let new = rotor_storage::licenses::NewLicense {
        token: token.trim(),
        jti: claims.jti.as_deref(),
        licensee: &claims.sub,
        expires_at: claims.expires_at(),
        details,
    };
    rotor_storage::licenses::install(db, new, actor).await?;
    state.activate(claims.clone());
    Ok(Ok(claims))
}

/// The license state at startup: `ROTOR_LICENSE` installed when valid and new (logged when
/// expired or invalid), then the valid license installed last made active.
pub async fn load(db: &sqlx::PgPool, setting: Option<&str>) -> anyhow::Result<LicenseState> {
    let state = LicenseState::new(Verifier::trusted()?);
    if let Some(value) = setting {
        let token = read_setting(value);
        let key = state.verifier().key_id().to_owned();
        match state.verifier().verify(&token, Utc::now()) {
            Verdict::Valid(_) => {
                if !rotor_storage::licenses::is_stored(db, &token).await? {
                    install(db, &state, &token, None).await?.ok();
                    tracing::info!("installed the license from ROTOR_LICENSE");
                }
            }
            Verdict::Expired(c) => {
                tracing::warn!(licensee = %c.sub, expired_at = %c.expires_at(), "ROTOR_LICENSE has expired; running without its features");
                state.set_problem("expired");
            }
            Verdict::Invalid => {
                tracing::warn!(trusted_key_id = %key, "ROTOR_LICENSE is not a license signed by the trusted key; running without it");
                state.set_problem("invalid");
            }
        }
    }
    reload(db, &state).await?;
    Ok(state)
}

/// Re-reads the stored licenses and makes the valid one installed last active (another replica
/// may have installed one).
pub async fn reload(db: &sqlx::PgPool, state: &LicenseState) -> Result<(), rotor_storage::Error> {
    let now = Utc::now();
    let mut newest_expired = None;
    for token in rotor_storage::licenses::tokens_newest_first(db).await? {
        match state.verifier().verify(&token, now) {
            Verdict::Valid(c) => {
                state.activate(c);
                return Ok(());
            }
            Verdict::Expired(c) => {
                newest_expired.get_or_insert(c);
            }
            Verdict::Invalid => {}
        }
    }
    if let Some(c) = newest_expired {
        state.activate(c);
    }
    Ok(())
}
