// The Credentials screen: a credential added from its provider's schema (a 422 and a 409 next to
// their fields), edited with its masked secret left as is, validated, deleted; health as text.

/** Opens the Credentials tab; returns the screen. */
async function openCredentials(t) {
  await t.openTab("Credentials");
  const screen = t.page.getByRole("region", { name: "Credentials", exact: true });
  await screen.getByRole("heading", { name: "Credentials", level: 2 }).waitFor();
  return screen;
}

/** Whether `input` is marked invalid, and the text of the error it points to. */
async function errorOf(form, input) {
  const ids = ((await input.getAttribute("aria-describedby")) ?? "").split(" ");
  const errorId = ids.find((id) => id.endsWith("-error"));
  return {
    invalid: await input.getAttribute("aria-invalid"),
    error: errorId ? await form.locator(`[id="${errorId}"]`).innerText() : null,
  };
}

/** Each input of `form`: its label, type, autocomplete, placeholder and help text. */
async function inputsOf(form) {
  return form.locator("input").evaluateAll((inputs) =>
    inputs.map((i) => ({
      label: i.labels?.[0]?.innerText ?? null,
      type: i.type,
      autocomplete: i.getAttribute("autocomplete"),
      placeholder: i.placeholder,
      help: (i.getAttribute("aria-describedby") ?? "")
        .split(" ")
        .filter((id) => id.endsWith("-help"))
        .map((id) => document.getElementById(id)?.innerText ?? "")
        .join(""),
    })),
  );
}

/** Add (refused twice first), edit the name only, validate, see health, delete. */
export async function credentials_manage(t) {
  const { page, config } = t;
  const secret = config.api_key;
  await t.signIn();
  const screen = await openCredentials(t);
  await screen.getByRole("button", { name: "Add credential" }).click();
  const form = screen.getByRole("form", { name: "Add credential" });
  await form.getByLabel("Provider").selectOption(config.provider);
  const schema = await inputsOf(form);
  await form.getByLabel("Name", { exact: true }).fill(config.name);
  await form.getByLabel("api_key", { exact: true }).fill(secret);
  // A URL the server refuses: its 422 lands next to base_url.
  const baseUrl = form.getByLabel("base_url", { exact: true });
  await baseUrl.fill("not a url");
  await form.getByRole("button", { name: "Add credential" }).click();
  await form.locator("[id$='-base_url-error']").waitFor();
  const refused = { ...(await errorOf(form, baseUrl)), alert: await form.getByRole("alert").innerText() };
  // A name another credential of this provider has: the 409 lands next to the name.
  await form.getByLabel("Name", { exact: true }).fill(config.taken);
  await baseUrl.fill(config.base_url);
  await form.getByRole("button", { name: "Add credential" }).click();
  await form.locator("[id$='-name-error']").waitFor();
  const duplicate = await errorOf(form, form.getByLabel("Name", { exact: true }));
  await t.shot("credentials-refused");
  await t.noSecretShown([secret]);
  await form.getByLabel("Name", { exact: true }).fill(config.name);
  await form.getByLabel("Quota cooldown (seconds)").fill("120");
  await form.getByRole("button", { name: "Add credential" }).click();
  const row = screen.locator(`tr[data-credential="${config.name}"]`);
  await row.waitFor();
  const group = await row.evaluate((r) => r.closest("section[data-provider]")?.querySelector("h3")?.innerText);
  const listed = await row.locator("dl.config").innerText();
  await t.noSecretShown([secret]);
  await t.shot("credentials");

  // Edit: the secret is shown masked; only the name changes.
  await row.getByRole("button", { name: "Edit" }).click();
  const edit = screen.getByRole("form", { name: `Edit ${config.name}` });
  const masked = await edit.getByLabel("api_key", { exact: true }).inputValue();
  const editHelp = (await inputsOf(edit)).find((i) => i.label === "api_key")?.help;
  await t.noSecretShown([secret]);
  await t.shot("credentials-edit");
  // A new base_url with the masked secret is refused (the stored key never goes to a new host).
  const editUrl = edit.getByLabel("base_url", { exact: true });
  await editUrl.fill(`${config.base_url}/elsewhere`);
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.locator("[id$='-api_key-error']").waitFor();
  const secretRequired = await errorOf(edit, edit.getByLabel("api_key", { exact: true }));
  await editUrl.fill(config.base_url);
  await edit.getByLabel("Name", { exact: true }).fill(config.renamed);
  await edit.getByRole("button", { name: "Save" }).click();
  const renamed = screen.locator(`tr[data-credential="${config.renamed}"]`);
  await renamed.waitFor();
  await screen.getByRole("status").filter({ hasText: `Saved ${config.renamed}.` }).waitFor();

  // Validate, with the result as text.
  await renamed.getByRole("button", { name: "Validate" }).click();
  const result = renamed.getByRole("status").filter({ hasText: /valid/i });
  await result.filter({ hasNotText: "Validating" }).waitFor();
  const validation = await result.innerText();

  // A rejected credential says so in words; deleting one a model uses is refused as text.
  const rejected = screen.locator(`tr[data-credential="${config.rejected}"]`);
  const health = await rejected.locator(".health").innerText();
  await rejected.getByRole("button", { name: "Delete" }).click();
  await rejected.getByRole("group", { name: `Delete ${config.rejected}?` }).getByRole("button", { name: "Delete" }).click();
  const inUse = await screen.getByRole("alert").innerText();
  // An unused one goes, after the confirmation in the page.
  const spare = screen.locator(`tr[data-credential="${config.spare}"]`);
  await spare.getByRole("button", { name: "Delete" }).click();
  const confirm = spare.getByRole("group", { name: `Delete ${config.spare}?` });
  await confirm.getByRole("button", { name: "Keep" }).click();
  const kept = await spare.count();
  await spare.getByRole("button", { name: "Delete" }).click();
  await confirm.getByRole("button", { name: "Delete" }).click();
  await spare.waitFor({ state: "detached" });
  await t.noSecretShown([secret]);
  const names = await screen.locator("tr[data-credential]").evaluateAll((rows) => rows.map((r) => r.dataset.credential));
  return {
    schema,
    refused,
    duplicate,
    group,
    listed,
    masked,
    edit_help: editHelp,
    secret_required: secretRequired,
    validation,
    health,
    in_use: inUse,
    kept,
    names,
  };
}

/** A member who only reads: the credentials with their health and the API keys, and no
 * control to change either. */
export async function credentials_read_only(t) {
  const { page } = t;
  await t.signIn();
  const screen = await openCredentials(t);
  await screen.locator("tr[data-credential]").first().waitFor();
  const count = (name) => page.getByRole("button", { name }).count();
  await t.noSecretShown();
  const credentials = {
    rows: await screen.locator("tr[data-credential]").count(),
    health: await screen.locator(".health").first().innerText(),
    add: await count("Add credential"),
    edit: await count("Edit"),
    validate: await count("Validate"),
    delete: await count("Delete"),
  };
  await t.openTab("API keys");
  const keys = page.getByRole("region", { name: "API keys", exact: true });
  await keys.locator("tr[data-key]").first().waitFor();
  return {
    ...credentials,
    key_rows: await keys.locator("tr[data-key]").count(),
    create_key: await count("Create key"),
    edit_limits: await count("Edit limits"),
    revoke: await count("Revoke"),
  };
}
