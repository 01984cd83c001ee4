//! Key files: `rotor license keygen` writes what every tool reads, with mode 0600.

use crate::helpers::*;
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// The DER inside a PEM file.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn issue(key: &std::path::Path) -> String {
    let out = run_ok(Command::new(binary("rotor")).args([
        "license",
        "issue",
        "--key",
        key.to_str().unwrap(),
        "--licensee",
        "ACME",
        "--features",
        "load_balancing",
        "--expires",
        "2099-01-01",
    ]));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn keygen_writes_an_rfc_8410_v1_key_that_openssl_reads_with_mode_0600() {
    let dir = tempdir();
    let key = dir.join("vendor.pem");
    let out = run_ok(
        Command::new(binary("rotor"))
            .args(["license", "keygen", "--out"])
            .arg(&key),
    );
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    // SEQUENCE of 46 bytes, INTEGER 0 (version 1), the Ed25519 OID, the 32-byte key: exactly
    // what `openssl genpkey -algorithm ed25519` writes.
    let der = der(&pem);
    assert_eq!(der.len(), 48);
    assert_eq!(
        &der[..16],
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20
        ]
    );
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(&key),
    );
    // openssl derives the same public key as the one keygen printed.
    let spki = run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key),
    )
    .stdout;
    let raw = &spki[spki.len() - 32..];
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        public
    );
    // A license signed with it verifies against that public key.
    let token = issue(&key);
    assert!(verifies(&token, raw), "{token}");
    // keygen never overwrites a key.
    let again = Command::new(binary("rotor"))
        .args(["license", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
}

/// A private key made by openssl: its PEM, the raw 32-byte secret and the raw public key.
fn openssl_key(path: &std::path::Path) -> (String, Vec<u8>, Vec<u8>) {
    run_ok(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(path),
    );
    let pem = std::fs::read_to_string(path).unwrap();
    let der = der(&pem);
    assert_eq!(der.len(), 48, "openssl wrote a v1 key");
    let spki = run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(path),
    )
    .stdout;
    (pem, der[16..].to_vec(), spki[spki.len() - 32..].to_vec())
}

/// Verifies a license token against a raw Ed25519 public key.
fn verifies(token: &str, public: &[u8]) -> bool {
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).is_ok()
}

/// An RFC 8410 OneAsymmetricKey (PKCS#8 v2): version 1, the key, then `[1]` the public key.
fn v2_pem(secret: &[u8], public: &[u8]) -> String {
    let mut der = vec![
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(secret);
    der.extend_from_slice(&[0x81, 0x21, 0x00]);
    der.extend_from_slice(public);
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn issue_reads_v1_keys_made_by_openssl() {
    let dir = tempdir();
    let key = dir.join("openssl.pem");
    let (pem, _, public) = openssl_key(&key);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let token = issue(&key);
    assert!(verifies(&token, &public), "{token}");
}

#[test]
fn issue_reads_v2_keys_and_refuses_a_public_key_that_does_not_match() {
    let dir = tempdir();
    let (_, secret, public) = openssl_key(&dir.join("openssl.pem"));
    let v2 = dir.join("v2.pem");
    std::fs::write(&v2, v2_pem(&secret, &public)).unwrap();
    // Well-formed DER of version 1 with the context-tagged public key (`openssl pkey` of
    // OpenSSL 3.0 refuses this form, which is why keygen does not write it).
    let parsed = run_ok(Command::new("openssl").args(["asn1parse", "-in"]).arg(&v2)).stdout;
    let parsed = String::from_utf8(parsed).unwrap();
    assert!(parsed.contains("INTEGER           :01"), "{parsed}");
    assert!(parsed.contains("cont [ 1 ]"), "{parsed}");
    let token = issue(&v2);
    assert!(verifies(&token, &public), "{token}");

    // A v2 key whose public half belongs to another key is refused, not used.
    let (_, _, other) = openssl_key(&dir.join("other.pem"));
    let mismatched = dir.join("mismatched.pem");
    std::fs::write(&mismatched, v2_pem(&secret, &other)).unwrap();
    let out = Command::new(binary("rotor"))
        .args(["license", "issue", "--key"])
        .arg(&mismatched)
        .args(["--licensee", "ACME", "--features", "load_balancing"])
        .args(["--expires", "2099-01-01"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a mismatched key pair signed a license"
    );
}

#[test]
fn secret_files_replace_a_leftover_with_a_new_0600_file() {
    let dir = tempdir();
    let path = dir.join("secrets.tmp");
    // A leftover readable by everyone (a crash between write and rename, an old version):
    // opening it would keep its mode, so it must be replaced, not reused.
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    rotor_api::embedded::write_secret(&path, b"new secret").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new secret");
}

/// A directory of its own, removed when the test ends.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("rotor-keyfiles-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}
