//! Credentials of people and programs: argon2id passwords (hashed off the async runtime, at
//! most one per core, at most [`MAX_QUEUED`] waiting), HS256 session JWTs with the algorithm pinned, and random bearer tokens
//! stored only as SHA-256 hashes.

use crate::config::JwtSecret;
use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// How long a session JWT lives.
pub const TOKEN_TTL_SECS: i64 = 3600;

/// Most hashes that wait for a core; beyond, logins answer 503 `busy` at once (see SECURITY.md).
pub const MAX_QUEUED: usize = 64;

/// Hashes and verifies passwords on the blocking pool, bounded to the number of cores so a
/// burst of logins queues instead of starving the runtime, and with a bounded queue so a
/// flood cannot hold unbounded memory or time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    dummy_hash: Arc<str>,
}

/// One place in the hashing queue, given back on drop.
struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// Builds the hasher and the dummy hash used to give unknown emails the same timing.
    pub async fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let permits = Arc::new(Semaphore::new(cores));
        let mut random = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut random);
        let dummy = base64::engine::general_purpose::STANDARD.encode(random);
        let dummy_hash = tokio::task::spawn_blocking(move || hash_blocking(&dummy)).await??;
        Ok(Self {
            permits,
            queued: Arc::new(AtomicUsize::new(0)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A core to hash on: at once if one is free, after waiting in a queue of at most
    /// [`MAX_QUEUED`] otherwise, or 503 `busy`.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::busy());
        }
        let _place = Queued(self.queued.clone());
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal())
    }

    /// argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.permit().await?;
        // The permit moves into the task: a client that goes away does not free the core early.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(&password)
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })
    }

    /// Whether `password` matches `hash`; with `None`, checks against the dummy hash (always false).
    pub async fn verify(&self, hash: Option<String>, password: String) -> Result<bool, ApiError> {
        let permit = self.permit().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash)
                .map(|parsed| {
                    // The cost comes from the PHC string: hashes made with other parameters
                    // (earlier releases used m = 19 MiB, t = 2) still verify.
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        Ok(ok && known)
    }
}

/// argon2id with m = 7 MiB, t = 5, p = 1: one of OWASP's equivalent recommended settings
/// (as strong as m = 19 MiB, t = 2), chosen for its smaller memory: the allocator keeps a
/// hash's block after it is freed, and 19 MiB of it was most of an idle process's RSS.
fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = argon2::Params::new(PASSWORD_MEMORY_KIB, 5, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// Memory of one password hash (KiB).
const PASSWORD_MEMORY_KIB: u32 = 7 * 1024;

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Session JWT claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// The user's token version when issued; a password change bumps it.
    pub ver: i32,
}

/// Signs and checks session JWTs with HS256 only.
#[derive(Clone)]
pub struct Jwt {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl Jwt {
    /// Keys derived from the configured secret.
    pub fn new(secret: &JwtSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret.expose())),
            decoding: Arc::new(DecodingKey::from_secret(secret.expose())),
            validation: Arc::new(validation),
        }
    }

    /// A new token for `user` at `token_version`.
    pub fn issue(&self, user: Uuid, token_version: i32) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            iat: now,
            exp: now + TOKEN_TTL_SECS,
            ver: token_version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "jwt signing failed");
            ApiError::internal()
        })
    }

    /// The claims of a valid, unexpired HS256 token signed with our secret.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// A freshly minted bearer secret: shown once, stored as `hash` with a display `prefix`.
pub struct NewSecret {
    /// The whole secret, returned to the caller once.
    pub value: String,
    /// Its first 11 characters.
    pub prefix: String,
    /// SHA-256 of the whole secret.
    pub hash: Vec<u8>,
}

/// `kind` + 32 random bytes in base64url, e.g. `rk-…` (API keys) or `rp-…` (personal tokens).
pub fn new_secret(kind: &str) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = format!(
        "{kind}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let prefix = value.chars().take(11).collect();
    let hash = sha256(&value);
    NewSecret {
        value,
        prefix,
        hash,
    }
}

/// SHA-256 of a bearer secret, the form in which it is stored and looked up.
pub fn sha256(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_documented_shape() {
        let s = new_secret("rk-");
        assert_eq!(s.value.len(), 3 + 43);
        assert!(s.value.starts_with("rk-"));
        assert_eq!(s.prefix, s.value[..11]);
        assert_eq!(s.hash, sha256(&s.value));
        assert_ne!(new_secret("rk-").value, s.value);
    }

    #[test]
    fn jwt_rejects_other_algorithms_and_secrets() {
        let jwt = Jwt::new(&JwtSecret::new(vec![7u8; 32]));
        let user = Uuid::new_v4();
        let token = jwt.issue(user, 3).unwrap();
        let claims = jwt.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.ver), (user, 3));

        let other = Jwt::new(&JwtSecret::new(vec![8u8; 32]));
        assert!(other.verify(&token).is_none());

        // alg: none with the same claims.
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(jwt
            .verify(&format!("{none_header}.{}.", parts[1]))
            .is_none());
        // HS512 signed with the right secret is still refused: the algorithm is pinned.
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            iat: now,
            exp: now + 60,
            ver: 3,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert!(jwt.verify(&hs512).is_none());
    }

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_never_match() {
        let p = Passwords::new().await.unwrap();
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(p
            .verify(Some(hash.clone()), "correct horse".into())
            .await
            .unwrap());
        assert!(!p.verify(Some(hash), "wrong horse".into()).await.unwrap());
        assert!(!p.verify(None, "anything".into()).await.unwrap());
    }

    #[tokio::test]
    async fn new_hashes_use_seven_mib_and_old_nineteen_mib_hashes_still_verify() {
        let p = Passwords::new().await.unwrap();
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(hash.contains("$m=7168,t=5,p=1$"), "{hash}");
        // What earlier releases stored (argon2's defaults: m = 19 MiB, t = 2).
        let salt = SaltString::encode_b64(&[3u8; 16]).unwrap();
        let old = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(old.contains("$m=19456,t=2,p=1$"), "{old}");
        assert!(p
            .verify(Some(old.clone()), "correct horse".into())
            .await
            .unwrap());
        assert!(!p.verify(Some(old), "wrong horse".into()).await.unwrap());
    }
}
