// Shared helpers of the browser tests: start a paygate binary on free ports with its own
// SQLite database, call its API, and drive Debian's Chromium with playwright-core.
import { spawn } from "node:child_process";
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

/** Starts `paygate` (all-in-one) in test mode; resolves when it answers. */
export async function startGateway(extraEnv = {}) {
  const bin = process.env.PAYGATE_BIN || join(root, "target", "debug", "paygate");
  const dir = mkdtempSync(join(tmpdir(), "paygate-e2e-"));
  const [api, checkout, dashboard] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: `sqlite://${join(dir, "paygate.db")}`,
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
    api: `http://127.0.0.1:${api}`,
    checkout: `http://127.0.0.1:${checkout}`,
    dashboard: `http://127.0.0.1:${dashboard}`,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on("exit", ok)));
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
  return { status: r.status, body: await r.json() };
}

export async function createOrder(g, amount = 50000) {
  const r = await api(g, "POST", "/api/v1/orders", { amount });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    ],
  });
}

export const tid = (id) => `[data-test-id="${id}"]`;

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** True when the page scrolls sideways. */
export async function scrollsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}
