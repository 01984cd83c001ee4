// The model list.

/** Which rows of the model list carry the load-balancing icon. */
export async function models(t) {
  const { page } = t;
  await t.signIn();
  await page.getByRole("heading", { name: "Models" }).waitFor();
  await page.locator("tr[data-model]").first().waitFor();
  const rows = {};
  for (const row of await page.locator("tr[data-model]").all()) {
    const name = await row.getAttribute("data-model");
    rows[name] = (await row.getByRole("img", { name: "Load balancing enabled" }).count()) === 1;
  }
  await t.noSecretShown();
  await t.shot("models");
  return { icons: rows };
}

/** Adding a model with its default credential and prices, then removing another one. */
export async function models_add(t) {
  const { page, config } = t;
  await t.signIn();
  await page.getByRole("heading", { name: "Models" }).waitFor();
  await page.getByRole("button", { name: "Add model" }).click();
  const form = page.getByRole("form", { name: "Add model" });
  await form.getByLabel("Name clients send").fill(config.name);
  await form.getByLabel("Upstream model").fill(config.upstream);
  await form.getByLabel("Default credential").selectOption({ label: config.credential });
  await form.getByLabel("Input price").fill("abc");
  await form.getByRole("button", { name: "Add model" }).click();
  const priceError = await form.locator("#model-input-price-error").innerText();
  await form.getByLabel("Input price").fill("2.5");
  await form.getByRole("button", { name: "Add model" }).click();
  await page.locator(`tr[data-model="${config.name}"]`).waitFor();
  // Remove another model, through its Config menu and a confirmation in the page.
  const row = page.locator(`tr[data-model="${config.remove}"]`);
  await row.getByRole("button", { name: "Config" }).click();
  await row.getByRole("menuitem", { name: "Remove model" }).click();
  await row.getByRole("group", { name: `Remove ${config.remove}?` }).getByRole("button", { name: "Remove" }).click();
  await row.waitFor({ state: "detached" });
  const names = await page.locator("tr[data-model]").evaluateAll((rows) => rows.map((r) => r.dataset.model));
  return { price_error: priceError, names };
}
