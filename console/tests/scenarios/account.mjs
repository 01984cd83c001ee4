// Signing up, out and in.

/** Sign up, see the shell, sign out, sign in again. */
export async function account(t) {
  const { page, config } = t;
  const { email, password, name } = config;
  await page.goto(`${config.url}/`);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.getByText(email).waitFor();
  await t.noSecretShown([password]);
  await t.shot("signed-in");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Rotor" }).waitFor();
  const afterOut = await page.evaluate(() => sessionStorage.length);
  // A wrong password is refused on the page, as text.
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(`${password}-wrong`);
  await page.getByRole("button", { name: "Sign in" }).click();
  const refusal = await page.getByRole("alert").innerText();
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await t.noSecretShown([password]);
  const token = await page.evaluate(() => sessionStorage.getItem("rotor.session"));
  return { storage_after_sign_out: afterOut, refusal, token };
}

/** A tab whose session the server ended (here: the password changed elsewhere). */
export async function session_ended(t) {
  const { page, config } = t;
  await page.goto(`${config.url}/`);
  await page.evaluate((token) => sessionStorage.setItem("rotor.session", token), config.token);
  await page.reload();
  await page.getByRole("heading", { name: "Sign in to Rotor" }).waitFor();
  return {
    notice: await page.getByRole("status").innerText(),
    storage: await page.evaluate(() => sessionStorage.length),
  };
}

/** A new workspace from the bar: refused without a name, then created and switched to. */
export async function new_workspace(t) {
  const { page, config } = t;
  await t.signIn();
  await page.getByRole("button", { name: "New workspace" }).click();
  const form = page.getByRole("form", { name: "New workspace" });
  await form.getByRole("button", { name: "Create" }).click();
  const refusal = await form.locator("#new-workspace-name-error").innerText();
  await form.getByLabel("Workspace name").fill(config.name);
  await form.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: config.name, level: 1 }).waitFor();
  return {
    refusal,
    selected: await page.getByRole("combobox", { name: "Workspace" }).inputValue(),
    options: await page.getByRole("combobox", { name: "Workspace" }).locator("option").allInnerTexts(),
  };
}
