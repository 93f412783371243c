// Shared helpers of the browser tests: start a paygate binary on free ports with a database
// of its own, call its API, and drive Debian's Chromium with playwright-core.
//
// PAYGATE_E2E_BACKEND picks the configuration: `sqlite` (the default: SQLite + the embedded
// queue) or `postgres` (PostgreSQL + Redis, the production setup: a fresh database with a
// random name on PAYGATE_TEST_POSTGRES_URL's server and a random key prefix on
// PAYGATE_TEST_REDIS_URL, both removed afterwards). Any 5xx answer a page or the API gives
// during a run fails it (`assertNoServerErrors`).
import { createServer as httpServer } from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "..");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

export const backend = process.env.PAYGATE_E2E_BACKEND || "sqlite";
if (!["sqlite", "postgres"].includes(backend)) throw new Error(`PAYGATE_E2E_BACKEND: ${backend}?`);
const postgresAdmin = process.env.PAYGATE_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.PAYGATE_TEST_REDIS_URL || "redis://127.0.0.1:6379";

/** Every 5xx answer seen: `METHOD URL STATUS`. */
export const serverErrors = [];

/** Fails when any page, request or API call answered 5xx. */
export function assertNoServerErrors() {
  if (serverErrors.length) throw new Error(`server errors:\n${serverErrors.join("\n")}`);
}

export const KEY = "key_test_abc123";
export const SECRET = "secret_test_xyz789";

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const random = () => Math.random().toString(36).slice(2, 12);

/** A database (and Redis key prefix) of its own: the settings, and a function removing it. */
function createDatabase(dir) {
  if (backend === "sqlite") {
    return { env: { DATABASE_URL: `sqlite://${join(dir, "paygate.db")}` }, drop() {} };
  }
  const name = `paygate_e2e_${random()}`;
  const prefix = `paygate-e2e-${random()}`;
  execFileSync("psql", [postgresAdmin, "-qAtc", `CREATE DATABASE ${name}`]);
  const url = postgresAdmin.replace(/\/[^/]*$/, `/${name}`);
  return {
    env: { DATABASE_URL: url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix },
    drop() {
      execFileSync("psql", [postgresAdmin, "-qAtc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
      const keys = execFileSync("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}:*`]).toString().split("\n").filter(Boolean);
      for (let i = 0; i < keys.length; i += 500) execFileSync("redis-cli", ["-u", redisUrl, "DEL", ...keys.slice(i, i + 500)]);
    },
  };
}

/** Starts `paygate` (all-in-one) in test mode; resolves when it answers. `g.dbEnv` holds the
 * settings that reach its database (for the CLI). The public URLs need the ports up front, so
 * they are picked free here; should another process take one before the gateway binds it, the
 * gateway exits at once and is started again on other ports. */
export async function startGateway(extraEnv = {}) {
  for (let attempt = 1; ; attempt++) {
    const g = await startOnce(extraEnv);
    if (g) return g;
    if (attempt === 3) throw new Error("paygate did not start");
  }
}

async function startOnce(extraEnv) {
  const bin = process.env.PAYGATE_BIN || join(root, "target", "debug", "paygate");
  const dir = mkdtempSync(join(tmpdir(), "paygate-e2e-"));
  const db = createDatabase(dir);
  const [api, checkout, dashboard] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    ...db.env,
    HOST: "127.0.0.1",
    PORT: String(api),
    CHECKOUT_PORT: String(checkout),
    DASHBOARD_PORT: String(dashboard),
    PUBLIC_API_URL: `http://127.0.0.1:${api}`,
    PUBLIC_CHECKOUT_URL: `http://127.0.0.1:${checkout}`,
    PUBLIC_DASHBOARD_URL: `http://127.0.0.1:${dashboard}`,
    TEST_MODE: "true",
    TEST_PROCESSING_DELAY: "500",
    RUST_LOG: "warn",
    ...extraEnv,
  };
  const child = spawn(bin, [], { env, stdio: ["ignore", "inherit", "inherit"] });
  const g = {
    child,
    dir,
    dbEnv: db.env,
    api: `http://127.0.0.1:${api}`,
    checkout: `http://127.0.0.1:${checkout}`,
    dashboard: `http://127.0.0.1:${dashboard}`,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on("exit", ok)));
      db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 200 && child.exitCode === null; i++) {
    try {
      const r = await fetch(`${g.api}/health`);
      if (r.ok) return g;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  await g.stop();
  return null;
}

/** Signs in on the dashboard of `g` as `email` in a new page `width` px wide; resolves on the
 * overview. */
export async function signIn(browser, g, email = "test@example.com", password = "password123", width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${g.dashboard}/login`);
  await page.fill(tid("email-input"), email);
  await page.fill(tid("password-input"), password);
  await page.click(tid("login-button"));
  await page.locator(tid("dashboard")).waitFor();
  return page;
}

/** A webhook receiver on a free local port: its `url` (path `/hook`), the requests it got
 * (`received`: path, headers, body), the status it answers (`status`, 200 until set), and
 * `close()`. */
export async function webhookSink() {
  const port = await freePort();
  const sink = { url: `http://127.0.0.1:${port}/hook`, received: [], status: 200 };
  const server = httpServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      sink.received.push({ body, headers: req.headers, path: req.url });
      res.statusCode = sink.status;
      res.end("ok");
    });
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  sink.close = () => server.close();
  return sink;
}

/** Calls the API as the test merchant. */
export async function api(g, method, path, body) {
  const r = await fetch(g.api + path, {
    method,
    headers: { "X-Api-Key": KEY, "X-Api-Secret": SECRET, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status >= 500) serverErrors.push(`${method} ${path} ${r.status}`);
  return { status: r.status, body: await r.json() };
}

export async function createOrder(g, amount = 50000) {
  const r = await api(g, "POST", "/api/v1/orders", { amount });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}

/** Chromium; every page it opens records 5xx answers in `serverErrors`. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    ],
  });
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (...args) => {
    const page = await newPage(...args);
    page.on("response", (r) => {
      if (r.status() >= 500) serverErrors.push(`${r.request().method()} ${r.url()} ${r.status()}`);
    });
    return page;
  };
  return browser;
}

export const tid = (id) => `[data-test-id="${id}"]`;

/** An amount in paise as the pages show rupees: Indian digit grouping, `₹12,34,567.00`
 * (computed with ICU's en-IN rules, not with the gateway's code). */
export function rupees(paise) {
  return "₹" + new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(paise / 100);
}

/** Screenshots the page as it stands (into `artifacts/`), after checking its accessibility. */
export async function shot(page, name) {
  await checkAccessibility(page, name);
  await page.screenshot({ path: join(artifacts, `${backend}-${name}.png`), fullPage: true });
}

/** This test file's accessibility findings, one line per state checked (written anew each run). */
const axeLog = join(artifacts, `axe-${backend}-${basename(process.argv[1] ?? "run")}.jsonl`);
writeFileSync(axeLog, "");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
/** The moderate (and minor) violations each checked state may still have: `{name: count}`;
 * a state not listed may have none. The counts may only fall. */
const axeAllowed = JSON.parse(readFileSync(join(here, "axe-allowed.json"), "utf8"));

/** Runs axe-core (from npm, evaluated in the page) on the page as it stands: any violation of
 * impact "serious" or "critical" fails, as do more moderate or minor ones than
 * `axe-allowed.json` allows the state `name`. Each state's findings are appended to
 * `artifacts/axe-<backend>-<test file>.jsonl` (with PAYGATE_AXE_RECORD=1, only recorded: a survey). */
export async function checkAccessibility(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const found = violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  appendFileSync(axeLog, JSON.stringify({ name, url: page.url(), found }) + "\n");
  if (process.env.PAYGATE_AXE_RECORD) return; // a survey: findings recorded, nothing failed
  const severe = found.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (severe.length) throw new Error(`accessibility (${name}): ${JSON.stringify(severe, null, 1)}`);
  const lesser = found.filter((v) => !severe.includes(v)).length;
  const allowed = axeAllowed[name] ?? 0;
  if (lesser > allowed) throw new Error(`accessibility (${name}): ${lesser} moderate or minor violations, ${allowed} allowed: ${JSON.stringify(found, null, 1)}`);
}

/** True when the page scrolls sideways. */
export async function scrollsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}
