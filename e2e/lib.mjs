// Shared helpers of the browser tests: start a paygate binary on free ports with a database
// of its own, call its API, and drive Debian's Chromium with playwright-core.
//
// PAYGATE_E2E_BACKEND picks the configuration: `sqlite` (the default: SQLite + the embedded
// queue) or `postgres` (PostgreSQL + Redis, the production setup: a fresh database with a
// random name on PAYGATE_TEST_POSTGRES_URL's server and a random key prefix on
// PAYGATE_TEST_REDIS_URL, both removed afterwards). Any 5xx answer a page or the API gives
// during a run fails it (`assertNoServerErrors`).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
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
 * settings that reach its database (for the CLI). */
export async function startGateway(extraEnv = {}) {
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
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${g.api}/health`);
      if (r.ok) return g;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  await g.stop();
  throw new Error("paygate did not start");
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

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${backend}-${name}.png`), fullPage: true });
}

/** True when the page scrolls sideways. */
export async function scrollsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}
