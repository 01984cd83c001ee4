//! DESIGN §12 "Key files": `rotor license keygen` writes what every tool reads, with mode 0600.

use crate::helpers::*;
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DER inside a PEM file.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn issue(key: &std::path::Path) -> String {
    let out = run(Command::new(binary("rotor")).args([
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
    let out = run(Command::new(binary("rotor"))
        .args(["license", "keygen", "--out"])
        .arg(&key));
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
    run(Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&key));
    // openssl derives the same public key as the one keygen printed.
    let spki = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key))
    .stdout;
    let raw = &spki[spki.len() - 32..];
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        public
    );
    // A license signed with it verifies against that public key.
    let token = issue(&key);
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
    // keygen never overwrites a key.
    let again = Command::new(binary("rotor"))
        .args(["license", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
}

#[test]
fn issue_reads_keys_made_by_openssl() {
    let dir = tempdir();
    let key = dir.join("openssl.pem");
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key));
    let token = issue(&key);
    assert_eq!(token.split('.').count(), 3, "{token}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rotor-keyfiles-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
