"""An admin scenario driven by a client generated from openapi/openapi.json with
openapi-python-client (no hand edits): sign up, create a workspace, credentials, a model and a
load-balancing pool, toggle it, and read the cooldown status. Run by scripts/api-check."""

import sys
import uuid

from rotor_client import AuthenticatedClient, Client
from rotor_client.api.auth import signup
from rotor_client.api.credentials import create_credential, list_credentials
from rotor_client.api.load_balancing import clear_cooldowns, get_config, patch_config, put_config
from rotor_client.api.models import create_model, get_model
from rotor_client.api.workspaces import create_workspace, get_workspace
from rotor_client.api.api_keys import create_key
from rotor_client.models import (
    EntryInputBody,
    ModelType,
    NewCredential,
    NewCredentialConfig,
    NewKey,
    NewModelRequest,
    NewWorkspace,
    PatchBody,
    PutBody,
    SignupRequest,
)


def main(base_url: str) -> None:
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    email = f"scenario-{uuid.uuid4().hex}@example.com"
    signed_up = signup.sync(client=anonymous, body=SignupRequest(email=email, password="scenario-password", name="Scenario"))
    admin = AuthenticatedClient(base_url=base_url, token=signed_up.access_token, raise_on_unexpected_status=True)

    ws = create_workspace.sync(client=admin, body=NewWorkspace(name="Scenario team"))
    detail = get_workspace.sync(ws.id, client=admin)
    assert detail.features.load_balancing, "the instance license grants load balancing"

    creds = []
    for i in range(3):
        config = NewCredentialConfig()
        config.additional_properties = {"api_key": f"sk-scenario-{i}-0123456789abcdef", "base_url": "https://api.example.com/v1"}
        cred = create_credential.sync(ws.id, client=admin, body=NewCredential(provider="openai_compatible", name=f"key-{i}", config=config))
        assert cred.config.additional_properties["api_key"].endswith("cdef") and "\u2026" in cred.config.additional_properties["api_key"]
        creds.append(cred)
    listed = list_credentials.sync(ws.id, client=admin)
    assert [c.name for c in listed.data] == ["key-0", "key-1", "key-2"]

    model = create_model.sync(
        ws.id,
        client=admin,
        body=NewModelRequest(provider="openai_compatible", name="gpt-scenario", model_type=ModelType.LLM, credential_id=creds[0].id),
    )
    pool = put_config.sync(
        ws.id,
        model.id,
        client=admin,
        body=PutBody(
            enabled=True,
            cooldown_seconds=30,
            entries=[
                EntryInputBody(credential_id=None),
                EntryInputBody(credential_id=creds[1].id, weight=2),
                EntryInputBody(credential_id=creds[2].id, enabled=False),
            ],
        ),
    )
    assert pool.effective and pool.version == 2, pool
    names = [e.credential_name for e in pool.entries]
    assert names == ["Default Config", "key-1", "key-2"], names

    off = patch_config.sync(ws.id, model.id, client=admin, body=PatchBody(enabled=False))
    assert not off.enabled and off.reason == "disabled"
    assert [e.id for e in off.entries] == [e.id for e in pool.entries], "toggling off keeps the entries"
    on = patch_config.sync(ws.id, model.id, client=admin, body=PatchBody(enabled=True), if_match=f'"{off.version}"')
    assert on.effective and [e.id for e in on.entries] == [e.id for e in pool.entries]
    assert get_model.sync(ws.id, model.id, client=admin).load_balancing.effective

    status = get_config.sync(ws.id, model.id, client=admin)
    assert all(e.status.state == "available" and e.status.cooldown_remaining_s == 0 for e in status.entries)
    cleared = clear_cooldowns.sync_detailed(ws.id, model.id, client=admin)
    assert cleared.status_code == 204

    key = create_key.sync(ws.id, client=admin, body=NewKey(name="scenario"))
    assert key.key.startswith("rk-")
    print("client scenario passed: signup, workspace, 3 credentials, model, pool toggled, cooldown status read")


if __name__ == "__main__":
    main(sys.argv[1])
