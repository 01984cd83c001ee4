// Members and roles, usage charts, the audit log, and the instance admin's License and
// Workspaces screens, as a user sees them; the Rust side (tests/it/console_admin.rs) checks
// each summary through the API.

/** Waits until `locator`'s text is not empty and not `previous`; returns it. */
async function textOf(locator, previous = "") {
  await locator.first().waitFor();
  for (let i = 0; i < 100; i++) {
    const text = (await locator.first().innerText()).trim();
    if (text && text !== previous) return text;
    await locator.page().waitForTimeout(100);
  }
  throw new Error(`the text stayed ${JSON.stringify(previous)}`);
}

/** Signs in as `email` (signing out first when a session is open). */
async function signInAs(t, email, password) {
  const { page, config } = t;
  await page.goto(`${config.url}/`);
  const out = page.getByRole("button", { name: "Sign out" });
  const form = page.getByRole("heading", { name: "Sign in to Rotor" });
  await page.locator('button:text-is("Sign out"), h1:text-is("Sign in to Rotor")').first().waitFor();
  if (await out.isVisible()) {
    await out.click();
    await form.waitFor();
  }
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** The labels of the tab bar. */
async function tabLabels(page) {
  const nav = page.getByRole("navigation", { name: "Sections" });
  await nav.getByRole("link").first().waitFor();
  return (await nav.getByRole("link").allInnerTexts()).map((s) => s.trim());
}

/** The members table as `{email: role}` (the select's value for managers). */
async function memberRoles(page) {
  const out = {};
  for (const row of await page.locator("tr[data-member]").all()) {
    const email = await row.getAttribute("data-member");
    const select = row.locator("select");
    out[email] = (await select.count()) ? await select.inputValue() : await row.locator("[data-role]").innerText();
  }
  return out;
}

/** Adds `email` with `role` through the Add member form; returns the refusal text, if any. */
async function addMember(page, email, role) {
  const form = page.locator('section[aria-labelledby="add-member-title"]');
  await form.getByLabel("Email", { exact: true }).fill(email);
  await form.getByLabel("Role", { exact: true }).selectOption(role);
  await form.getByRole("button", { name: "Add member" }).click();
}

/**
 * Members: an unknown email and a malformed one are refused (as text, and next to the field);
 * `config.add` is added as editor then made `config.promote_to`; `config.remove` is added,
 * a first Remove is cancelled, a second confirmed; the signed-in last owner's demotion and
 * removal are refused as text.
 */
export async function members_screen(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("Members");
  await page.getByRole("heading", { name: "Members" }).waitFor();
  await page.locator(`tr[data-member="${config.email}"]`).waitFor();
  const form = page.locator('section[aria-labelledby="add-member-title"]');

  await addMember(page, "nobody-here@example.com", "editor");
  const unknown = await textOf(form.getByRole("alert"));
  await addMember(page, "not-an-email", "editor");
  const fieldError = await textOf(form.locator("#member-email-error"));
  const invalid = await form.locator("#member-email").getAttribute("aria-invalid");

  await addMember(page, config.add, "editor");
  const row = page.locator(`tr[data-member="${config.add}"]`);
  await row.waitFor();
  const addedAs = await row.locator("select").inputValue();
  const status = page.locator('section[aria-labelledby="members-title"] [data-message]');
  const added = await textOf(status);

  await row.getByLabel(`Role of ${config.add}`).selectOption(config.promote_to);
  await row.getByRole("button", { name: "Change role" }).click();
  const changed = await textOf(status, added);

  // The last owner (the signed-in user) can be neither demoted nor removed.
  const me = page.locator(`tr[data-member="${config.email}"]`);
  await me.getByLabel(`Role of ${config.email}`).selectOption("normal");
  await me.getByRole("button", { name: "Change role" }).click();
  const demoteRefusal = await textOf(status, changed);
  const ownerShownAfter = await me.locator("select").inputValue();
  await me.getByRole("button", { name: "Remove" }).click();
  await me.getByRole("group", { name: `Remove ${config.email}?` }).getByRole("button", { name: "Yes, remove" }).click();
  // The refusal closes the confirmation and gives the focus back to Remove.
  await page.waitForFunction(() => document.activeElement?.textContent === "Remove");
  const removeRefusal = (await status.innerText()).trim();

  // Remove, confirmed in the page (the first attempt cancelled, with the keyboard).
  await addMember(page, config.remove, "normal");
  const gone = page.locator(`tr[data-member="${config.remove}"]`);
  await gone.waitFor();
  await gone.getByRole("button", { name: "Remove" }).click();
  const confirm = gone.getByRole("group", { name: `Remove ${config.remove}?` });
  await confirm.waitFor();
  await page
    .waitForFunction(() => document.activeElement?.textContent === "Yes, remove", null, { timeout: 5000 })
    .catch(() => {});
  const focusedOnConfirm = await page.evaluate(() => document.activeElement?.textContent ?? "");
  await confirm.getByRole("button", { name: "Cancel" }).press("Enter");
  const keptAfterCancel = await gone.count();
  await gone.getByRole("button", { name: "Remove" }).click();
  await gone.getByRole("button", { name: "Yes, remove" }).click();
  await gone.waitFor({ state: "detached" });

  await t.noSecretShown();
  await t.shot("members");
  return {
    unknown,
    field_error: fieldError,
    aria_invalid: invalid,
    added_as: addedAs,
    changed,
    demote_refusal: demoteRefusal,
    owner_shown_after: ownerShownAfter,
    remove_refusal: removeRefusal,
    focused_on_confirm: focusedOnConfirm,
    kept_after_cancel: keptAfterCancel,
    roles: await memberRoles(page),
  };
}

/** The usage totals table as `{group: {requests, errors, input_tokens, output_tokens}}`. */
async function totals(page, by, days) {
  const table = page.locator(`table.usage-totals[data-group-by="${by}"][data-period="${days}"]`);
  await table.waitFor();
  const out = {};
  for (const row of await table.locator("tbody tr").all()) {
    const n = async (col) => Number(await row.locator(`td[data-col="${col}"]`).innerText());
    out[await row.getAttribute("data-group")] = {
      requests: await n("requests"),
      errors: await n("errors"),
      input_tokens: await n("input_tokens"),
      output_tokens: await n("output_tokens"),
    };
  }
  return out;
}

/** The bars of chart `chart` summed per series: `{series: total}`. */
async function barSums(page, chart) {
  const out = {};
  for (const bar of await page.locator(`figure[data-chart="${chart}"] rect.bar`).all()) {
    const s = await bar.getAttribute("data-series");
    out[s] = (out[s] ?? 0) + Number(await bar.getAttribute("data-value"));
  }
  return out;
}

/** The visually-hidden table of chart `chart`: the "Total" column summed over the days. */
async function tableTotal(page, chart) {
  let sum = 0;
  for (const cell of await page.locator(`figure[data-chart="${chart}"] table tbody tr td:last-child`).all()) {
    sum += Number(await cell.textContent());
  }
  return sum;
}

/** Usage by model (30 days, then 7), the charts' bars and tables, then by API key. */
export async function usage_screen(t) {
  const { page } = t;
  await t.signIn();
  await t.openTab("Usage");
  await page.getByRole("heading", { name: "Usage" }).waitFor();
  const byModel = await totals(page, "model", 30);
  const chartRequests = await barSums(page, "requests");
  const chartInput = await barSums(page, "input-tokens");
  const chartOutput = await barSums(page, "output-tokens");
  const tableRequests = await tableTotal(page, "requests");
  const chartNames = await page.locator("figure.chart svg[role=img]").evaluateAll((svgs) =>
    svgs.map((s) => document.getElementById(s.getAttribute("aria-labelledby"))?.textContent ?? ""),
  );
  const bars = await page.locator('figure[data-chart="requests"] rect.bar').count();
  const titled = await page.locator('figure[data-chart="requests"] rect.bar title').count();
  await t.shot("usage-by-model");

  await page.getByLabel("Period").selectOption("7");
  const byModel7 = await totals(page, "model", 7);
  const days7 = await page.locator('figure[data-chart="requests"] table tbody tr').count();

  await page.getByLabel("Group by").selectOption("api_key");
  const byKey = await totals(page, "api_key", 7);
  await t.shot("usage-by-key");
  await t.noSecretShown();
  return {
    by_model: byModel,
    by_model_7: byModel7,
    days_7: days7,
    by_key: byKey,
    chart_requests: chartRequests,
    chart_input: chartInput,
    chart_output: chartOutput,
    table_requests: tableRequests,
    chart_names: chartNames,
    bars,
    titled,
  };
}

/** The audit table's rows, top to bottom. */
async function auditRows(page) {
  const out = [];
  for (const row of await page.locator("tr[data-event]").all()) {
    const cells = await row.locator("td").allInnerTexts();
    out.push({
      id: await row.getAttribute("data-event"),
      action: await row.getAttribute("data-action"),
      time: await row.locator("time").getAttribute("datetime"),
      actor: cells[1]?.trim(),
      target: cells[3]?.trim(),
      details: cells[4]?.trim(),
    });
  }
  return out;
}

/** Adds `config.add` in the Members tab, then reads the Audit log, all of it (Load more). */
export async function audit_screen(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("Members");
  await page.locator(`tr[data-member="${config.email}"]`).waitFor();
  await addMember(page, config.add, "editor");
  await page.locator(`tr[data-member="${config.add}"]`).waitFor();

  await t.openTab("Audit log");
  await page.getByRole("heading", { name: "Audit log" }).waitFor();
  await page.locator("tr[data-event]").first().waitFor();
  const first = await auditRows(page);
  const more = page.getByRole("button", { name: "Load more" });
  let pages = 1;
  while (await more.isVisible()) {
    const before = await page.locator("tr[data-event]").count();
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll("tr[data-event]").length > n, before);
    pages++;
  }
  await t.shot("audit");
  await t.noSecretShown();
  return { first_page: first.length, pages, rows: await auditRows(page) };
}

/** Signs in as each of `config.users` and lists the tab bar; tries `#/license` directly too. */
export async function admin_tabs(t) {
  const { page, config } = t;
  const tabs = {};
  const licenseHeading = {};
  for (const u of config.users) {
    await signInAs(t, u.email, u.password);
    tabs[u.email] = await tabLabels(page);
    await page.goto(`${config.url}/#/license`);
    await page.reload();
    // The workspace's name heads the page once the user and workspace are loaded.
    await page.locator(".shell main > h1").waitFor();
    licenseHeading[u.email] = await page.getByRole("heading", { name: "Install a license" }).count();
  }
  return { tabs, license_heading: licenseHeading };
}

/**
 * License refusals: each of `config.bad_licenses` pasted and refused (as text); the status shown
 * before and after. Then, on the Workspaces tab of this self-hosted instance,
 * `config.plan_workspace`'s plan shown as text, with no control to change it.
 */
export async function license_refusals(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("License");
  await page.getByRole("heading", { name: "Install a license" }).waitFor();
  const status = page.locator("[data-license-status]");
  await status.waitFor();
  const before = await status.getAttribute("data-license-status");
  const box = page.getByLabel("License token");
  const alert = page.locator('section[aria-labelledby="install-title"] [role=alert]');
  const refusals = [];
  let last = "";
  for (const bad of config.bad_licenses) {
    await box.fill(bad);
    await page.getByRole("button", { name: "Install license" }).click();
    last = await textOf(alert, last);
    refusals.push(last);
  }
  const after = await status.getAttribute("data-license-status");
  await t.shot("license-refused");

  await t.openTab("Workspaces");
  const row = page.locator(`tr[data-workspace="${config.plan_workspace}"]`);
  await row.waitFor();
  const members = Number(await row.locator("td.num").innerText());
  const planControls = (await row.locator("select").count()) + (await row.getByRole("button", { name: "Set plan" }).count());
  const planShown = await row.locator(".plan-name").innerText();
  const note = await page.locator('section[aria-labelledby="workspaces-title"] p.muted').first().innerText();
  await t.shot("workspaces");
  await t.noSecretShown();
  return { before, after, refusals, members, plan_controls: planControls, plan_shown: planShown, note };
}

/** Installs `config.license` on the License tab; the status and facts shown afterwards. */
export async function license_install(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("License");
  const feature = page.locator(".shell main > p.muted");
  const barBefore = await feature.innerText();
  await page.getByLabel("License token").fill(config.license);
  await page.getByRole("button", { name: "Install license" }).click();
  const done = await textOf(page.locator('section[aria-labelledby="install-title"] [role=status]'));
  await page.locator('[data-license-status="valid"]').waitFor();
  // The bar follows without a reload.
  await page.locator(".shell main > p.muted", { hasText: "Load balancing: available" }).waitFor();
  await t.shot("license");
  return {
    done,
    status: await page.locator("[data-license-status]").getAttribute("data-license-status"),
    licensee: await page.locator('[data-fact="licensee"]').innerText(),
    features: await page.locator('[data-fact="features"]').innerText(),
    box_after: await page.getByLabel("License token").inputValue(),
    bar_before: barBefore,
    bar_after: await feature.innerText(),
  };
}

/** Sets `config.plan_workspace`'s plan to `config.plan` on the Workspaces tab (saas mode). */
export async function plan_change(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("Workspaces");
  const row = page.locator(`tr[data-workspace="${config.plan_workspace}"]`);
  await row.waitFor();
  const before = await row.getAttribute("data-plan");
  await row.getByLabel(/^Plan of /).selectOption(config.plan);
  await row.getByRole("button", { name: "Set plan" }).click();
  const answer = await textOf(row.locator("[data-message]"));
  await page.locator(`tr[data-workspace="${config.plan_workspace}"][data-plan="${config.plan}"]`).waitFor();
  await t.noSecretShown();
  return { before, answer, after: await row.getAttribute("data-plan"), members: Number(await row.locator("td.num").innerText()) };
}

/** An owner who steps down to `config.role` in the page loses the managing controls at once. */
export async function self_demotion(t) {
  const { page, config } = t;
  await t.signIn();
  await t.openTab("Members");
  const me = page.locator(`tr[data-member="${config.email}"]`);
  await me.waitFor();
  const before = await page.getByRole("button", { name: "Add member" }).count();
  await me.getByLabel(`Role of ${config.email}`).selectOption(config.role);
  await me.getByRole("button", { name: "Change role" }).click();
  await page.getByRole("button", { name: "Add member" }).waitFor({ state: "detached" });
  return { before, after: await page.getByRole("button", { name: "Add member" }).count(), bar: await page.locator(".shell main > p.muted").innerText() };
}
