//! The secret settings in types that wipe their bytes on drop, cannot be cloned, and print
//! `****` (or a one-way id, or a redacted URL) when debugged, so a logged `Config` or an
//! accidental copy never carries them.

use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use std::fmt;

/// The 32-byte master key that wraps every workspace data key.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    /// Takes the key's bytes, decoded straight into the zeroizing box by `fill`.
    pub fn init(fill: impl FnOnce(&mut [u8; 32])) -> Self {
        MasterKey(SecretBox::init_with_mut(fill))
    }

    /// The key's bytes, for building the keyring.
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    /// Shows the key's id (a one-way digest, as stored next to the data it wraps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = rotor_storage::crypto::key_id(self.expose());
        write!(f, "MasterKey({id})")
    }
}

/// The HMAC secret that signs session JWTs (at least 32 bytes).
pub struct JwtSecret(SecretSlice<u8>);

impl JwtSecret {
    /// Takes ownership of the secret's bytes (wiped when the secret is dropped).
    pub fn new(bytes: Vec<u8>) -> Self {
        JwtSecret(bytes.into())
    }

    /// The bytes, for deriving the signing keys.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(****)")
    }
}

/// A service URL that may carry a password (`DATABASE_URL`, `REDIS_URL`): Debug shows it
/// with the password replaced by `****`. A clone is another zeroizing copy (clap's parsed
/// values must be `Clone`).
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// Takes ownership of the URL.
    pub fn new(url: String) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with its password hidden, for logs and error messages.
    pub fn redacted(&self) -> String {
        redact_url(self.expose())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// Hides the password of a `scheme://user:password@host/...` URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:****@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secrets() {
        let key = MasterKey::init(|k| k.fill(0xab));
        assert!(format!("{key:?}").starts_with("MasterKey(mk_"), "{key:?}");
        assert_eq!(key.expose(), &[0xab; 32]);
        let jwt = JwtSecret::new(b"a-very-secret-jwt-signing-secret".to_vec());
        assert_eq!(format!("{jwt:?}"), "JwtSecret(****)");
        let url = SecretUrl::new("postgres://rotor:s3cret@db:5432/rotor".into());
        assert_eq!(
            format!("{url:?}"),
            "\"postgres://rotor:****@db:5432/rotor\""
        );
        assert_eq!(url.expose(), "postgres://rotor:s3cret@db:5432/rotor");
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact_url("postgres://rotor:s3cret@db:5432/rotor"),
            "postgres://rotor:****@db:5432/rotor"
        );
        assert_eq!(redact_url("redis://redis:6379/"), "redis://redis:6379/");
        assert_eq!(
            redact_url("rediss://:pw@cache:6380/0"),
            "rediss://:****@cache:6380/0"
        );
    }
}
