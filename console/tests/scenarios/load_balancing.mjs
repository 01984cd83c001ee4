// Dify's load-balancing procedure in the console: Config → Load balancing, Add credential,
// the switch, Save, the icon; its refusals, the upgrade notice, live state and Reset cooldowns.

/** Opens the Load balancing pane of `model` through its Config menu; returns the pane. */
async function openPane(t, model) {
  const { page } = t;
  await page.getByRole("heading", { name: "Models" }).waitFor();
  const row = page.locator(`tr[data-model="${model}"]`);
  await row.getByRole("button", { name: "Config" }).click();
  await row.getByRole("menuitem", { name: "Load balancing" }).click();
  const pane = page.getByRole("dialog", { name: "Load balancing" });
  await pane.locator("li[data-entry]").first().waitFor();
  return pane;
}

/** Picks the existing credential `name` through Add credential. */
async function addExisting(pane, name) {
  await pane.getByRole("button", { name: "Add credential" }).click();
  await pane.getByRole("group", { name: "Choose a credential" }).getByRole("button", { name, exact: true }).click();
}

/** Which rows of the model list carry the load-balancing icon. */
async function icons(page) {
  const rows = {};
  for (const row of await page.locator("tr[data-model]").all()) {
    rows[await row.getAttribute("data-model")] =
      (await row.getByRole("img", { name: "Load balancing enabled" }).count()) === 1;
  }
  return rows;
}

/** The entries' names in the pane, in order. */
async function entryNames(pane) {
  const names = [];
  for (const li of await pane.locator("li[data-entry]").all()) names.push(await li.getAttribute("data-entry"));
  return names;
}

/** The whole procedure: an existing credential twice, a new one in place with weight 2, on, Save. */
export async function lb_procedure(t) {
  const { page, config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  await t.shot("load-balancing-empty");
  const before = await entryNames(pane);
  await addExisting(pane, config.pick);
  await addExisting(pane, config.pick);
  // A new credential, added in place from its provider's schema.
  const fresh = config.fresh;
  await pane.getByRole("button", { name: "Add credential" }).click();
  await pane.getByRole("button", { name: "Add a new credential" }).click();
  const form = pane.getByRole("form", { name: "New credential" });
  await form.getByLabel("Provider").selectOption(fresh.provider);
  await form.getByLabel("Name", { exact: true }).fill(fresh.name);
  await form.getByLabel("api_key", { exact: true }).fill(fresh.api_key);
  await form.getByLabel("base_url", { exact: true }).fill(fresh.base_url);
  await form.getByRole("button", { name: "Add and use" }).click();
  const added = pane.locator(`li[data-entry="${fresh.name}"]`);
  await added.waitFor();
  await added.getByLabel("Weight").fill("2");
  const shares = await pane.locator("li[data-entry] .share").allInnerTexts();
  await t.noSecretShown([fresh.api_key]);
  await pane.getByRole("switch", { name: "Load balancing" }).check();
  await pane.getByRole("button", { name: "Save" }).click();
  await pane.getByText("Saved. Load balancing is on.").waitFor();
  await page.locator(`tr[data-model="${config.model}"]`).getByRole("img", { name: "Load balancing enabled" }).waitFor();
  await t.noSecretShown([fresh.api_key]);
  await t.shot("load-balancing");
  return { before, shares, entries: await entryNames(pane), icons: await icons(page) };
}

/** Switching the pool off again, from the same pane, with the keyboard only. */
export async function lb_switch_off(t) {
  const { page, config } = t;
  await t.signIn();
  await page.getByRole("heading", { name: "Models" }).waitFor();
  const row = page.locator(`tr[data-model="${config.model}"]`);
  await row.getByRole("button", { name: "Config" }).focus();
  await page.keyboard.press("Enter");
  // The menu opens on its item; Escape closes it and gives the focus back to Config.
  await page.keyboard.press("Escape");
  const back = await row.getByRole("button", { name: "Config" }).evaluate((b) => b === document.activeElement);
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  const pane = page.getByRole("dialog", { name: "Load balancing" });
  await pane.locator("li[data-entry]").first().waitFor();
  const sw = pane.getByRole("switch", { name: "Load balancing" });
  const wasOn = await sw.isChecked();
  await sw.focus();
  await page.keyboard.press("Space");
  await pane.getByRole("button", { name: "Save" }).focus();
  await page.keyboard.press("Enter");
  await pane.getByText("Saved.", { exact: true }).waitFor();
  await page.locator(`tr[data-model="${config.model}"] [role="img"]`).waitFor({ state: "detached" });
  return { was_on: wasOn, focus_back: back, entries: await entryNames(pane), icons: await icons(page) };
}

/** The two-credential rule, then a server 422 shown next to its fields. */
export async function lb_refusals(t) {
  const { config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  await pane.getByRole("switch", { name: "Load balancing" }).check();
  await pane.getByRole("button", { name: "Save" }).click();
  const rule = await pane.getByRole("alert").innerText();
  await addExisting(pane, config.pick);
  await pane.getByLabel("Cooldown (seconds)").fill("0");
  await pane.locator(`li[data-entry="${config.pick}"]`).getByLabel("Weight").fill("500");
  await pane.getByRole("button", { name: "Save" }).click();
  const cooldown = pane.getByLabel("Cooldown (seconds)");
  await pane.locator("#lb-cooldown_seconds-error").waitFor();
  const weight = pane.locator(`li[data-entry="${config.pick}"]`).getByLabel("Weight");
  const next = async (input) => {
    const ids = ((await input.getAttribute("aria-describedby")) ?? "").split(" ");
    const errorId = ids.find((id) => id.endsWith("-error"));
    return {
      invalid: await input.getAttribute("aria-invalid"),
      error: errorId ? await pane.locator(`[id="${errorId}"]`).innerText() : null,
    };
  };
  await t.shot("load-balancing-refused");
  return { rule, cooldown: await next(cooldown), weight: await next(weight), alert: await pane.getByRole("alert").innerText() };
}

/** A workspace without the feature: the notice instead of the switch. */
export async function lb_upgrade(t) {
  const { config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  return {
    notice: await pane.getByRole("note").innerText(),
    switches: await pane.getByRole("switch", { name: "Load balancing" }).count(),
  };
}

/** A cooling entry counts down in seconds; Reset cooldowns puts it back. */
export async function lb_countdown(t) {
  const { page, config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  const entry = pane.locator(`li[data-entry="${config.cooling}"]`);
  const countdown = entry.locator(".countdown");
  await countdown.waitFor();
  const seconds = async () => Number((/back in (\d+) s/.exec(await countdown.innerText()) ?? [])[1]);
  const first = await seconds();
  const text = await entry.locator(".status").innerText();
  await page.waitForTimeout(2300);
  const later = await seconds();
  await t.shot("load-balancing-cooling");
  await pane.getByRole("button", { name: "Reset cooldowns" }).click();
  await pane.locator(`li[data-entry="${config.cooling}"][data-state="available"]`).waitFor();
  return {
    first,
    later,
    text,
    after: await entry.locator(".status").innerText(),
    countdowns_after: await entry.locator(".countdown").count(),
  };
}

/** A member who only reads: the pane shows the pool, nothing in it can be changed. */
export async function lb_read_only(t) {
  const { config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  const count = (role, name) => pane.getByRole(role, { name }).count();
  return {
    entries: await pane.locator("li[data-entry]").count(),
    switch_disabled: await pane.getByRole("switch", { name: "Load balancing" }).isDisabled(),
    save: await count("button", "Save"),
    add: await count("button", "Add credential"),
    reset: await count("button", "Reset cooldowns"),
    weight_disabled: await pane.getByLabel("Weight").first().isDisabled(),
  };
}

/** The feature went while the pool was on: the notice, and the switch to turn it off; the
 * Default Config entry removed and added back; then a save while the server is unreachable. */
export async function lb_feature_gone(t) {
  const { page, config } = t;
  await t.signIn();
  const pane = await openPane(t, config.model);
  const notice = await pane.getByRole("note").innerText();
  const sw = pane.getByRole("switch", { name: "Load balancing" });
  const wasOn = await sw.isChecked();
  await pane.locator('li[data-entry="Default Config"]').getByRole("button", { name: "Remove Default Config" }).click();
  await pane.getByRole("button", { name: "Add credential" }).click();
  await pane.getByRole("group", { name: "Choose a credential" }).getByRole("button", { name: "Default Config" }).click();
  const entries = await entryNames(pane);
  await sw.uncheck();
  // The network fails once: the page says so and stays usable.
  await page.route("**/load-balancing", (route) => route.abort(), { times: 1 });
  await pane.getByRole("button", { name: "Save" }).click();
  const offline = await pane.getByRole("alert").innerText();
  await pane.getByRole("button", { name: "Save" }).click();
  await pane.getByText("Saved.", { exact: true }).waitFor();
  return { notice, was_on: wasOn, entries, offline, switches: await sw.count() };
}
