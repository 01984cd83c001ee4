//! Turning a stored credential into a dispatch target (the only place secrets leave storage
//! types, straight into a zeroizing buffer for the upstream request).

use rotor_dispatch::target::{Family, ProviderKind, Target};
use rotor_storage::credentials::Credential;
use rotor_storage::providers::Wire;
use zeroize::Zeroizing;

/// The dispatch target of a readable credential of a known provider.
pub fn target(credential: &Credential) -> Option<Target> {
    if !credential.readable {
        return None;
    }
    let kind = kind(rotor_storage::providers::find(&credential.provider)?.wire);
    let text = |name: &str| {
        credential
            .config
            .plain
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let base_url = match kind {
        ProviderKind::AzureOpenAi => text("endpoint")?,
        _ => text("base_url")?,
    };
    let api_key = Zeroizing::new(
        credential
            .config
            .secrets
            .get("api_key")?
            .expose()
            .to_owned(),
    );
    Some(Target {
        kind,
        base_url,
        api_key,
        organization: text("organization"),
        api_version: text("api_version"),
        deployment: text("deployment"),
    })
}

/// How dispatch speaks a catalogue wire format (presets speak the compatible one).
fn kind(wire: Wire) -> ProviderKind {
    match wire {
        Wire::OpenAi => ProviderKind::OpenAi,
        Wire::OpenAiCompatible => ProviderKind::OpenAiCompatible,
        Wire::AzureOpenAi => ProviderKind::AzureOpenAi,
        Wire::Anthropic => ProviderKind::Anthropic,
        Wire::Gemini => ProviderKind::Gemini,
    }
}

/// The API family of a catalogue provider (an unknown id, which validation keeps out of the
/// database, reads as OpenAI's).
pub fn family_of(provider: &str) -> Family {
    rotor_storage::providers::find(provider)
        .map(|p| kind(p.wire).family())
        .unwrap_or(Family::OpenAi)
}
