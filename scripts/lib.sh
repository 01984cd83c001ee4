# shellcheck shell=bash
# Shared helpers for scripts/test, scripts/openapi and .ci/run. Source it; don't run it.
#
# Every cargo call of these scripts must see the same ROTOR_LICENSE_PUBKEY: the build
# script of rotor-api declares `rerun-if-env-changed=ROTOR_LICENSE_PUBKEY`, so a different
# (or missing) value rebuilds the crate and everything after it.

# Repository root, whatever the caller's cwd.
ROTOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROTOR_TARGET_DIR="${CARGO_TARGET_DIR:-$ROTOR_ROOT/target}"
ROTOR_LICENSE_DIR="$ROTOR_TARGET_DIR/rotor-test-license"

# license_keys: make sure a throwaway license key pair exists, then export
#   ROTOR_LICENSE_PUBKEY   the public key (base64url, no padding, of the 32 raw Ed25519
#                          bytes) that the build compiles in instead of the vendor key;
#   ROTOR_TEST_LICENSE_KEY path of the matching private key (PKCS#8 PEM) that tests use
#                          to issue licenses (`rotor license issue --key ...`).
# The pair lives under target/ (gitignored): never commit a private key.
#
# Key generation, first that works:
#   1. `rotor license keygen` of an already built binary (the vendor tool itself);
#   2. openssl, which needs no build: so on a fresh machine the key exists before the
#      first cargo call and one build serves everything.
# If neither is available nothing is exported; scripts/test calls this again after its
# build and rebuilds once if a key has appeared by then.
license_keys() {
    local dir="$ROTOR_LICENSE_DIR" rotor="$ROTOR_TARGET_DIR/debug/rotor"
    if [[ ! -s "$dir/public.txt" || ! -s "$dir/private.pem" ]]; then
        mkdir -p "$dir"
        chmod 700 "$dir"
        rm -f "$dir/private.pem" "$dir/public.txt"
        if [[ -x "$rotor" ]] && "$rotor" license --help >/dev/null 2>&1; then
            "$rotor" license keygen --out "$dir/private.pem" >"$dir/public.txt.tmp"
        elif command -v openssl >/dev/null 2>&1; then
            openssl genpkey -algorithm ed25519 -out "$dir/private.pem" 2>/dev/null
            # The DER SubjectPublicKeyInfo of an Ed25519 key ends with the 32 raw bytes.
            openssl pkey -in "$dir/private.pem" -pubout -outform DER 2>/dev/null |
                tail -c 32 | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$dir/public.txt.tmp"
        else
            return 0 # nothing to generate with (yet)
        fi
        chmod 600 "$dir/private.pem"
        tr -d ' \n' <"$dir/public.txt.tmp" >"$dir/public.txt"
        rm -f "$dir/public.txt.tmp"
    fi
    ROTOR_LICENSE_PUBKEY="$(cat "$dir/public.txt")"
    ROTOR_TEST_LICENSE_KEY="$dir/private.pem"
    export ROTOR_LICENSE_PUBKEY ROTOR_TEST_LICENSE_KEY
}

# Run a command quietly; on failure show its output and fail.
quiet() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        echo "failed: $*" >&2
        tail -n 50 "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

# sdk_venv: make sure $ROTOR_TARGET_DIR/sdk-venv holds the official Python SDKs pinned in
# scripts/sdk-requirements.txt (tests/it/mock_families.rs runs them against the mock
# provider), rebuilding it when the pins change, and export ROTOR_TEST_SDK_PYTHON, its
# interpreter. Needs python3 with its venv module.
sdk_venv() {
    local venv="$ROTOR_TARGET_DIR/sdk-venv" req="$ROTOR_ROOT/scripts/sdk-requirements.txt"
    if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$req" "$venv/requirements.txt"; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        quiet "$venv/bin/pip" install --disable-pip-version-check -r "$req"
        cp "$req" "$venv/requirements.txt"
    fi
    ROTOR_TEST_SDK_PYTHON="$venv/bin/python"
    export ROTOR_TEST_SDK_PYTHON
}
