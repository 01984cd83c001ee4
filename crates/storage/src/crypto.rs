//! Envelope encryption: each workspace has a random 256-bit data key, stored
//! wrapped by the master key under AES-256-GCM; secret fields are encrypted with the
//! workspace key, a random 96-bit nonce and an AAD that binds the ciphertext to its
//! workspace, credential and field, so a ciphertext moved anywhere else fails to decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

/// A decrypted secret. Debug and Display print `****`; the bytes are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a plaintext secret.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The plaintext, for the one place that needs it (an upstream request header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form shown in responses: first 3 + `…` + last 4 characters when longer than 12,
    /// else `****`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks a secret for display: `sk-…abcd` (first three and last four characters), or `****`
/// when it is 12 characters or shorter.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() > 12 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}\u{2026}{tail}")
    } else {
        "****".to_owned()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Why something could not be decrypted. Carries no key material and no plaintext.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The data was wrapped by a master key this process does not have.
    #[error("master key {0} is not configured")]
    UnknownKey(String),
    /// Authentication failed: tampered, truncated, or moved to another row or tenant.
    #[error("ciphertext failed authentication")]
    Corrupt,
}

/// A master key and the id derived from it (stored next to everything it wraps). Not
/// `Clone`; Debug shows the id only.
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl MasterKey {
    /// A master key from its 32 bytes, read in place (no copy of them is left behind).
    pub fn new(bytes: &[u8; 32]) -> Self {
        let key: &Key<Aes256Gcm> = bytes.into();
        Self {
            id: key_id(bytes),
            cipher: Aes256Gcm::new(key),
        }
    }

    /// The key's id: `mk_` + the first 16 hex digits of a SHA-256 of the key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// The id of a master key (safe to log and store: a one-way digest).
pub fn key_id(bytes: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"rotor-master-key-id:");
    h.update(bytes);
    let digest = h.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("mk_{hex}")
}

/// The master keys this process holds: the current one (wraps new data) and, during a
/// rotation, the previous one (still unwraps old data).
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Option<MasterKey>,
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    // Encryption with a valid key and nonce cannot fail for inputs of this size.
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Corrupt);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Corrupt)?;
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Corrupt)
}

fn wrap_aad(workspace: Uuid) -> Vec<u8> {
    let mut aad = b"rotor/workspace-key/v1/".to_vec();
    aad.extend_from_slice(workspace.as_bytes());
    aad
}

impl Keyring {
    /// The keyring from the current and optional previous master keys.
    pub fn new(current: &[u8; 32], previous: Option<&[u8; 32]>) -> Self {
        Self {
            current: MasterKey::new(current),
            previous: previous.map(MasterKey::new),
        }
    }

    /// Id of the current master key.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Whether this keyring can unwrap data wrapped by `key_id`.
    pub fn has(&self, key_id: &str) -> bool {
        self.by_id(key_id).is_some()
    }

    fn by_id(&self, key_id: &str) -> Option<&MasterKey> {
        if self.current.id == key_id {
            return Some(&self.current);
        }
        self.previous.as_ref().filter(|k| k.id == key_id)
    }

    /// A new random data key for `workspace`, returned with its wrapped form and key id.
    pub fn new_data_key(&self, workspace: Uuid) -> (DataKey, Vec<u8>, String) {
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(dek.as_mut());
        let wrapped = seal(&self.current.cipher, dek.as_ref(), &wrap_aad(workspace));
        (
            DataKey::new(workspace, &dek),
            wrapped,
            self.current.id.clone(),
        )
    }

    /// Unwraps a workspace's data key.
    pub fn unwrap(
        &self,
        workspace: Uuid,
        wrapped: &[u8],
        key_id: &str,
    ) -> Result<DataKey, CryptoError> {
        let key = self
            .by_id(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let dek = open(&key.cipher, wrapped, &wrap_aad(workspace))?;
        let bytes: [u8; 32] = dek
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Corrupt)?;
        let bytes = Zeroizing::new(bytes);
        Ok(DataKey::new(workspace, &bytes))
    }

    /// Re-wraps a data key under the current master key (for `rotor keys rewrap`).
    pub fn rewrap(
        &self,
        workspace: Uuid,
        wrapped: &[u8],
        key_id: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .by_id(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let dek = open(&key.cipher, wrapped, &wrap_aad(workspace))?;
        Ok(seal(
            &self.current.cipher,
            dek.as_slice(),
            &wrap_aad(workspace),
        ))
    }
}

/// A workspace's unwrapped data key.
pub struct DataKey {
    workspace: Uuid,
    cipher: Aes256Gcm,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(workspace {}, ****)", self.workspace)
    }
}

fn field_aad(workspace: Uuid, credential: Uuid, field: &str) -> Vec<u8> {
    let mut aad = b"rotor/credential-secret/v1/".to_vec();
    aad.extend_from_slice(workspace.as_bytes());
    aad.extend_from_slice(credential.as_bytes());
    aad.extend_from_slice(field.as_bytes());
    aad
}

impl DataKey {
    fn new(workspace: Uuid, bytes: &[u8; 32]) -> Self {
        Self {
            workspace,
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*bytes)),
        }
    }

    /// Encrypts one secret field of one credential.
    pub fn encrypt(&self, credential: Uuid, field: &str, secret: &Secret) -> Vec<u8> {
        seal(
            &self.cipher,
            secret.expose().as_bytes(),
            &field_aad(self.workspace, credential, field),
        )
    }

    /// Decrypts one secret field; fails if the ciphertext was altered or belongs elsewhere.
    pub fn decrypt(
        &self,
        credential: Uuid,
        field: &str,
        sealed: &[u8],
    ) -> Result<Secret, CryptoError> {
        let plain = open(
            &self.cipher,
            sealed,
            &field_aad(self.workspace, credential, field),
        )?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Corrupt)?;
        Ok(Secret::new(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let ring = Keyring::new(&[1; 32], None);
        let (ws, cred) = (Uuid::new_v4(), Uuid::new_v4());
        let (key, wrapped, id) = ring.new_data_key(ws);
        assert_eq!(id, ring.current_id());
        let secret = Secret::new("sk-live-abcdefghijklmnop".into());
        let sealed = key.encrypt(cred, "api_key", &secret);
        assert!(!sealed.windows(8).any(|w| w == b"sk-live-"));
        let again = ring.unwrap(ws, &wrapped, &id).unwrap();
        assert_eq!(again.decrypt(cred, "api_key", &sealed).unwrap(), secret);
        // Another credential, field or workspace cannot open it.
        assert_eq!(
            again.decrypt(Uuid::new_v4(), "api_key", &sealed),
            Err(CryptoError::Corrupt)
        );
        assert_eq!(
            again.decrypt(cred, "other", &sealed),
            Err(CryptoError::Corrupt)
        );
        assert!(ring.unwrap(Uuid::new_v4(), &wrapped, &id).is_err());
        // One flipped bit is an error, never garbage.
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            again.decrypt(cred, "api_key", &tampered),
            Err(CryptoError::Corrupt)
        );
    }

    #[test]
    fn rotation_reads_old_keys_and_rewraps() {
        let old = Keyring::new(&[1; 32], None);
        let ws = Uuid::new_v4();
        let (_, wrapped, old_id) = old.new_data_key(ws);
        let rotating = Keyring::new(&[2; 32], Some(&[1; 32]));
        assert!(rotating.unwrap(ws, &wrapped, &old_id).is_ok());
        let rewrapped = rotating.rewrap(ws, &wrapped, &old_id).unwrap();
        let new_only = Keyring::new(&[2; 32], None);
        assert!(new_only
            .unwrap(ws, &rewrapped, new_only.current_id())
            .is_ok());
        assert_eq!(
            new_only.unwrap(ws, &wrapped, &old_id).err(),
            Some(CryptoError::UnknownKey(old_id))
        );
    }

    #[test]
    fn masking_and_debug_hide_secrets() {
        let s = Secret::new("sk-abcdefghijklmnop1234".into());
        assert_eq!(s.masked(), "sk-\u{2026}1234");
        assert_eq!(Secret::new("short-secret".into()).masked(), "****");
        assert_eq!(format!("{s:?} {s}"), "**** ****");
    }
}
