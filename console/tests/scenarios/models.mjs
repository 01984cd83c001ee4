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
