// The API keys screen: a key created in the page is shown once with a Copy button, then never
// again; Revoke with its confirmation in the page; limits set and changed in the page.

/** Opens the API keys tab; returns the screen. */
async function openKeys(t) {
  await t.openTab("API keys");
  const screen = t.page.getByRole("region", { name: "API keys", exact: true });
  await screen.getByRole("heading", { name: "API keys", level: 2 }).waitFor();
  return screen;
}

/** Fills the create form with `name` and `limits` ({label: value}) and submits it. */
async function create(screen, name, limits = {}) {
  const form = screen.getByRole("form", { name: "Create API key" });
  await form.getByLabel("Name", { exact: true }).fill(name);
  for (const [label, value] of Object.entries(limits)) await form.getByLabel(label, { exact: true }).fill(value);
  await form.getByRole("button", { name: "Create key" }).click();
  return form;
}

/** Create a key, copy it, dismiss it, reload: the key is gone from the page and storage. */
export async function api_key_once(t) {
  const { page, config } = t;
  await t.signIn();
  let screen = await openKeys(t);
  await create(screen, config.name);
  const shown = screen.getByRole("region", { name: `New API key ${config.name}` });
  await shown.waitFor();
  const key = await shown.locator("#created-key").innerText();
  const note = await shown.getByText("will not be shown again").innerText();
  await shown.getByRole("button", { name: "Copy" }).click();
  await shown.getByRole("status").waitFor();
  const copied = await shown.getByRole("status").innerText();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  const row = screen.locator(`tr[data-key="${config.name}"]`);
  await row.waitFor();
  const listed = await row.locator("td").first().innerText();
  const storage = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
  await t.shot("api-key-created");
  await shown.getByRole("button", { name: "Done" }).click();
  await shown.waitFor({ state: "detached" });
  await t.noSecretShown([key]);
  // Leaving the tab and coming back, then a reload: never shown again.
  await t.openTab("Credentials");
  screen = await openKeys(t);
  await row.waitFor();
  await t.noSecretShown([key]);
  await page.reload();
  screen = await openKeys(t);
  await row.waitFor();
  await t.noSecretShown([key]);
  return {
    key,
    note,
    copied,
    clipboard,
    listed,
    key_in_storage_while_shown: storage.includes(key),
    shown_after: await screen.getByRole("region", { name: /New API key/ }).count(),
  };
}

/** Revoke a key through its confirmation in the page, with the keyboard only. */
export async function api_key_revoke(t) {
  const { page, config } = t;
  await t.signIn();
  const screen = await openKeys(t);
  const row = screen.locator(`tr[data-key="${config.name}"]`);
  const focused = (locator) => locator.evaluate((e) => e === document.activeElement);
  const revoke = row.getByRole("button", { name: "Revoke" });
  await revoke.focus();
  await page.keyboard.press("Enter");
  const confirm = row.getByRole("group", { name: `Revoke ${config.name}?` });
  await confirm.waitFor();
  // It opens on Keep; Escape keeps the key and gives the focus back to Revoke.
  const keepFocused = await focused(confirm.getByRole("button", { name: "Keep" }));
  await page.keyboard.press("Escape");
  await confirm.waitFor({ state: "detached" });
  const focusBack = await focused(revoke);
  await page.keyboard.press("Enter");
  await confirm.waitFor();
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Enter");
  await screen.locator(`tr[data-key="${config.name}"][data-status="revoked"]`).waitFor();
  await t.shot("api-key-revoked");
  return {
    status: await row.locator("td").nth(4).innerText(),
    done: await screen.getByRole("status").innerText(),
    buttons: await row.getByRole("button").count(),
    keep_focused: keepFocused,
    focus_back: focusBack,
  };
}

/** Limits typed at creation (one refused first), then changed and one removed in the page. */
export async function api_key_limits(t) {
  const { config } = t;
  await t.signIn();
  const screen = await openKeys(t);
  const form = await create(screen, config.name, {
    "Requests per minute": "0",
    "Tokens per minute": "5000",
    "Tokens per month": "1000000",
    "US dollars per month": "12.5",
  });
  // The server's 422 for rpm 0 is shown next to the field; nothing is created.
  const rpm = form.getByLabel("Requests per minute", { exact: true });
  await form.locator("#key-new-rpm-error").waitFor();
  const refused = {
    invalid: await rpm.getAttribute("aria-invalid"),
    error: await form.locator("#key-new-rpm-error").innerText(),
    rows: await screen.locator(`tr[data-key="${config.name}"]`).count(),
  };
  await rpm.fill("30");
  await form.getByRole("button", { name: "Create key" }).click();
  const shown = screen.getByRole("region", { name: `New API key ${config.name}` });
  await shown.waitFor();
  await shown.getByRole("button", { name: "Done" }).click();
  const row = screen.locator(`tr[data-key="${config.name}"]`);
  await row.waitFor();
  const created = await row.locator("td.limits").innerText();
  // Change rpm, remove the token budget.
  await row.getByRole("button", { name: "Edit limits" }).click();
  const edit = screen.getByRole("form", { name: `Limits of ${config.name}` });
  const before = await edit.getByLabel("Requests per minute", { exact: true }).inputValue();
  await edit.getByLabel("Requests per minute", { exact: true }).fill("45");
  await edit.getByLabel("Tokens per month", { exact: true }).fill("");
  await edit.getByRole("button", { name: "Save limits" }).click();
  await screen.getByRole("status").filter({ hasText: `Saved the limits of ${config.name}.` }).waitFor();
  await t.shot("api-key-limits");
  return { refused, created, before, after: await row.locator("td.limits").innerText() };
}

/** A key scoped to `config.models` (comma-separated) until `config.expires` (YYYY-MM-DD). */
export async function api_key_scope(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("API keys");
  const form = page.getByRole("form", { name: "Create API key" });
  await form.getByLabel("Name", { exact: true }).fill(config.name);
  await form.getByLabel("Allowed models").fill(config.models);
  await form.getByLabel("Expires on (UTC)").fill(config.expires);
  await form.getByRole("button", { name: "Create key" }).click();
  const shown = page.locator("#created-key");
  await shown.waitFor();
  return { key: await shown.innerText() };
}
