//! Compiles in the license public key: `ROTOR_LICENSE_PUBKEY` (base64url of the 32 raw Ed25519
//! bytes, as `rotor license keygen` prints) replaces the vendor key, for tests and private builds.

fn main() {
    println!("cargo:rerun-if-env-changed=ROTOR_LICENSE_PUBKEY");
    let key = std::env::var("ROTOR_LICENSE_PUBKEY").unwrap_or_default();
    let key = key.trim().trim_end_matches('=');
    if key.is_empty() {
        return;
    }
    let valid = key.len() == 43
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        println!("cargo:warning=ROTOR_LICENSE_PUBKEY is not base64url of 32 bytes; ignoring it");
        return;
    }
    println!("cargo:rustc-env=ROTOR_BUILD_LICENSE_PUBKEY={key}");
}
