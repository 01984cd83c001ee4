// Drives the console in Debian's Chromium (playwright-core, no downloaded browser) for the
// Rust end-to-end tests (tests/it/helpers/browser.rs): `node browser.mjs <scenario> <config>`.
// Scenarios live in tests/scenarios/*.mjs, each module exporting functions `(t) => summary`.
// Every scenario records each request the page makes and fails on one to another origin or on
// a page error; `t.noSecretShown` checks the page's text and the browser's storage.
// The last output line is a JSON summary for the Rust side to check through the API.
import { readdir } from "node:fs/promises";
import { chromium } from "playwright-core";

const [scenario, raw] = process.argv.slice(2);
const config = JSON.parse(raw ?? "{}");
const origin = new URL(config.url).origin;

const scenarios = {};
const dir = new URL("./scenarios/", import.meta.url);
for (const file of (await readdir(dir)).filter((f) => f.endsWith(".mjs")).sort()) {
  Object.assign(scenarios, await import(new URL(file, dir).href));
}
const run = scenarios[scenario];
if (!run) throw new Error(`no scenario ${scenario}`);

const browser = await chromium.launch({
  executablePath: process.env.ROTOR_TEST_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({
  viewport: { width: 1366, height: 800 },
  permissions: ["clipboard-read", "clipboard-write"],
});
const page = await context.newPage();
const foreign = [];
page.on("request", (r) => {
  const u = new URL(r.url());
  if (u.protocol !== "data:" && u.origin !== origin) foreign.push(r.url());
});
const failures = [];
page.on("pageerror", (e) => failures.push(String(e)));

/** What a scenario works with. */
const t = {
  page,
  context,
  config,
  /** Fails unless no secret appears in the page's text or storage (call at every step). */
  async noSecretShown(secrets = config.secrets ?? []) {
    const text = await page.evaluate(() => document.body.innerText);
    const html = await page.content();
    const storage = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
    const cookies = JSON.stringify(await context.cookies());
    for (const s of secrets) {
      const places = [["page text", text], ["page's HTML", html], ["storage", storage], ["cookies", cookies]];
      for (const [where, value] of places) {
        if (value.includes(s)) throw new Error(`a secret appears in the ${where}`);
      }
    }
  },
  /** Signs in through the form with the config's email and password, then switches to the
   * config's `workspace` (an id) when it names one. */
  async signIn() {
    await page.goto(`${config.url}/`);
    await page.getByLabel("Email").fill(config.email);
    await page.getByLabel("Password").fill(config.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    if (config.workspace) {
      await page.getByRole("combobox", { name: "Workspace" }).selectOption(config.workspace);
    }
  },
  /** Opens the tab labelled `label` in the bar. */
  async openTab(label) {
    await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: label }).click();
  },
  /** Saves a screenshot `<name>.png` when the config asks for screenshots. */
  async shot(name) {
    if (config.screenshots) await page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
  },
};

let summary;
try {
  summary = await run(t);
} finally {
  await browser.close();
}
if (foreign.length) throw new Error(`requests to another origin: ${foreign.join(", ")}`);
if (failures.length) throw new Error(`page errors: ${failures.join("; ")}`);
console.log(JSON.stringify(summary));
