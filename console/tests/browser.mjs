// Drives the console in Debian's Chromium (playwright-core, no downloaded browser) for the
// Rust end-to-end tests (tests/it/browser.rs): `node browser.mjs <scenario> <config JSON>`.
// Every scenario records each request the page makes and fails on one to another origin, and
// checks that no secret of the config appears in the page's text or the browser's storage.
// The last output line is a JSON summary for the Rust side to check through the API.
import { chromium } from "playwright-core";

const [scenario, raw] = process.argv.slice(2);
const config = JSON.parse(raw ?? "{}");
const origin = new URL(config.url).origin;

const browser = await chromium.launch({
  executablePath: process.env.ROTOR_TEST_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
const page = await context.newPage();
const foreign = [];
page.on("request", (r) => {
  const u = new URL(r.url());
  if (u.protocol !== "data:" && u.origin !== origin) foreign.push(r.url());
});
const failures = [];
page.on("pageerror", (e) => failures.push(String(e)));

/** Fails unless no secret appears in the page's text or storage (call at every step). */
async function noSecretShown(secrets) {
  const text = await page.evaluate(() => document.body.innerText);
  const storage = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
  const cookies = JSON.stringify(await context.cookies());
  for (const s of secrets) {
    for (const [where, value] of [["page text", text], ["storage", storage], ["cookies", cookies]]) {
      if (value.includes(s)) throw new Error(`a secret appears in the ${where}`);
    }
  }
}

const scenarios = {
  /** Sign up, see the shell, sign out, sign in again. */
  async account() {
    const { email, password, name } = config;
    await page.goto(`${config.url}/`);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByText(email).waitFor();
    await noSecretShown([password]);
    if (config.screenshots) await page.screenshot({ path: `${config.screenshots}/signed-in.png` });
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
    await noSecretShown([password]);
    const token = await page.evaluate(() => sessionStorage.getItem("rotor.session"));
    return { storage_after_sign_out: afterOut, refusal, token };
  },
};

/** Signs in through the form with the config's email and password. */
async function signIn() {
  await page.goto(`${config.url}/`);
  await page.getByLabel("Email").fill(config.email);
  await page.getByLabel("Password").fill(config.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

Object.assign(scenarios, {
  /** The model list: which rows carry the load-balancing icon. */
  async models() {
    await signIn();
    await page.getByRole("heading", { name: "Models" }).waitFor();
    await page.locator("tr[data-model]").first().waitFor();
    const rows = {};
    for (const row of await page.locator("tr[data-model]").all()) {
      const name = await row.getAttribute("data-model");
      rows[name] = (await row.getByRole("img", { name: "Load balancing enabled" }).count()) === 1;
    }
    await noSecretShown(config.secrets ?? []);
    if (config.screenshots) await page.screenshot({ path: `${config.screenshots}/models.png` });
    return { icons: rows };
  },
});

let summary;
try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`no scenario ${scenario}`);
  summary = await run();
} finally {
  await browser.close();
}
if (foreign.length) throw new Error(`requests to another origin: ${foreign.join(", ")}`);
if (failures.length) throw new Error(`page errors: ${failures.join("; ")}`);
console.log(JSON.stringify(summary));
