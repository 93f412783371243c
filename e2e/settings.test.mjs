// Settings and secrets on the dashboard in a real browser (Debian's Chromium): rotating the API
// secret and the webhook secret with an overlap, the business profile (display name, logo,
// time zone) on the checkout and in the widget, and the transactions' date range and filters.
import crypto from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";
import { api, assertNoServerErrors, createOrder, freePort, launch, root, shot, signIn, startGateway, tid, webhookSink } from "./lib.mjs";

let g, browser, hook;
before(async () => {
  g = await startGateway({ TEST_PROCESSING_DELAY: "200" });
  browser = await launch();
  hook = await webhookSink();
});
after(async () => {
  hook?.close();
  await browser?.close();
  await g?.stop();
});

const login = (email, password) => signIn(browser, g, email, password);

/** Whether Standard Webhooks' `webhook-signature` of `r` holds a signature made with `secret`. */
function signedWith(secret, r) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${r.headers["webhook-id"]}.${r.headers["webhook-timestamp"]}.${r.body}`;
  const expected = crypto.createHmac("sha256", key).update(signed).digest("base64");
  return r.headers["webhook-signature"].split(" ").some((s) => s === `v1,${expected}`);
}

/** A PNG of one pixel. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==", "base64");

describe("settings", () => {
  test("rotating the API secret asks first, keeps the old one working for the overlap chosen, and says until when", async () => {
    const bin = process.env.PAYGATE_BIN || join(root, "target", "debug", "paygate");
    const env = { PATH: process.env.PATH, ...g.dbEnv };
    const created = JSON.parse(execFileSync(bin, ["merchant", "create", "--name", "Rotating Shop", "--email", "rotate@example.com", "--password", "rotate-pass-1", "--json"], { env }).toString());
    const call = (secret) => fetch(`${g.api}/api/v1/payments`, { headers: { "X-Api-Key": created.api_key, "X-Api-Secret": secret } }).then((r) => r.status);
    const page = await login("rotate@example.com", "rotate-pass-1");
    await page.click(tid("rotate-secret-button"));
    await page.locator(tid("rotate-confirm")).waitFor();
    assert.equal(await call(created.api_secret), 200, "nothing happens before the confirmation");
    assert.ok(await page.locator(tid("overlap-24h")).isChecked(), "24 hours is preselected");
    await shot(page, "settings-1280-rotate-api-secret");
    // Cancel changes nothing.
    await page.click(tid("rotate-cancel"));
    await page.locator(tid("dashboard")).waitFor();
    assert.equal(await call(created.api_secret), 200);
    await page.click(tid("rotate-secret-button"));
    await page.check(tid("overlap-1h"));
    await page.click(tid("rotate-confirm-button"));
    await page.locator(".notice", { hasText: "The old secret works until" }).waitFor();
    const fresh = await page.locator(tid("api-secret")).textContent();
    assert.match(fresh, /^secret_/);
    assert.equal(await call(fresh), 200);
    assert.equal(await call(created.api_secret), 200, "the old one, during its hour");
    assert.match(await page.locator(tid("api-secret-overlap")).textContent(), /keeps working until/);
    const until = Date.parse(await page.locator(`${tid("api-secret-overlap")} time`).getAttribute("datetime"));
    assert.ok(Math.abs(until - (Date.now() + 3600_000)) < 120_000, new Date(until).toISOString());
    // "Now": the previous one stops at once.
    await page.click(tid("rotate-secret-button"));
    await page.check(tid("overlap-now"));
    await page.click(tid("rotate-confirm-button"));
    await page.locator(".notice", { hasText: "The old secret stopped working now." }).waitFor();
    const newest = await page.locator(tid("api-secret")).textContent();
    assert.equal(await call(newest), 200);
    assert.equal(await call(fresh), 401);
    assert.equal(await call(created.api_secret), 401);
    assert.equal(await page.locator(tid("api-secret-overlap")).count(), 0);
    await page.close();
  });

  test("regenerating the webhook secret asks first; during the overlap deliveries carry both signatures", async () => {
    assert.equal((await api(g, "PUT", "/api/v1/webhooks/config", { webhook_url: hook.url })).status, 200);
    // A generated secret first (the seeded one is not base64, as Standard Webhooks' keys are).
    const old = (await api(g, "POST", "/api/v1/webhooks/config/secret", {})).body.webhook_secret;
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/webhooks`);
    await page.click(tid("regenerate-secret-button"));
    await page.locator(tid("rotate-confirm")).waitFor();
    await shot(page, "settings-1280-rotate-webhook-secret");
    await page.check(tid("overlap-1h"));
    await page.click(tid("rotate-confirm-button"));
    await page.locator(".notice", { hasText: "also signs deliveries until" }).waitFor();
    const fresh = await page.locator(tid("webhook-secret")).textContent();
    assert.notEqual(fresh, old);
    assert.match(await page.locator(tid("webhook-secret-overlap")).textContent(), /previous secret also signs until/);
    const before = hook.received.length;
    await page.click(tid("test-webhook-button"));
    await page.locator(".notice", { hasText: "Test webhook sent" }).waitFor();
    for (let i = 0; i < 200 && hook.received.length === before; i++) await new Promise((ok) => setTimeout(ok, 25));
    const r = hook.received[before];
    assert.ok(r, "the test webhook arrived");
    assert.ok(signedWith(fresh, r), "signed with the new secret");
    assert.ok(signedWith(old, r), "and with the old one, during the overlap");
    await page.close();
  });

  test("the display name and the logo set on the settings page are on the checkout and in the widget", async () => {
    const page = await login();
    await page.click('nav a[href="/dashboard/settings"]');
    await page.locator(tid("profile-form")).waitFor();
    await page.fill(tid("display-name-input"), "Asha's Store");
    await page.click(tid("profile-save"));
    await page.locator(".notice", { hasText: "Profile saved." }).waitFor();
    await page.setInputFiles(tid("logo-input"), { name: "logo.png", mimeType: "image/png", buffer: PNG });
    await page.click(tid("logo-upload"));
    await page.locator(".notice", { hasText: "Logo saved" }).waitFor();
    assert.ok(await page.locator(tid("logo-preview")).evaluate((img) => img.complete && img.naturalWidth === 1));
    await shot(page, "settings-1280-profile");
    // An SVG is refused.
    await page.setInputFiles(tid("logo-input"), { name: "logo.svg", mimeType: "image/svg+xml", buffer: Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>") });
    await page.click(tid("logo-upload"));
    await page.locator(".notice", { hasText: "PNG, JPEG or WebP" }).waitFor();
    // The hosted page shows the display name, not the account's, with the logo.
    const orderId = await createOrder(g, 12300);
    const checkout = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await checkout.goto(`${g.checkout}/checkout?order_id=${orderId}`);
    assert.equal(await checkout.locator("h1").textContent(), "Asha's Store");
    assert.ok(await checkout.locator(tid("merchant-logo")).evaluate((img) => img.complete && img.naturalWidth === 1));
    assert.equal(await checkout.getByText("Test Merchant").count(), 0);
    await shot(checkout, "settings-1280-checkout-with-logo");
    // The widget frames the same page on a merchant's site.
    const port = await freePort();
    const shop = createServer((req, res) => {
      res.setHeader("Content-Type", "text/html");
      res.end(`<!doctype html><html lang="en"><head><title>Shop</title></head><body><main><h1>Shop</h1><button id="pay">Pay</button></main>
<script src="${g.checkout}/checkout.js"></script>
<script>document.getElementById("pay").onclick = () => new PaymentGateway({ key: "key_test_abc123", orderId: "${orderId}" }).open();</script></body></html>`);
    });
    await new Promise((ok) => shop.listen(port, "127.0.0.1", ok));
    await checkout.goto(`http://127.0.0.1:${port}/`);
    await checkout.click("#pay");
    const frame = checkout.frameLocator(tid("payment-iframe"));
    assert.equal(await frame.locator("h1").textContent(), "Asha's Store");
    assert.ok(await frame.locator(tid("merchant-logo")).evaluate((img) => img.complete && img.naturalWidth === 1));
    shop.close();
    await checkout.close();
    // Removed, and the name cleared: the checkout shows the account's name alone.
    await page.click(tid("logo-remove"));
    await page.locator(tid("no-logo")).waitFor();
    await page.fill(tid("display-name-input"), "");
    await page.click(tid("profile-save"));
    await page.locator(".notice", { hasText: "Profile saved." }).waitFor();
    const plain = await browser.newPage();
    await plain.goto(`${g.checkout}/checkout?order_id=${await createOrder(g, 100)}`);
    assert.equal(await plain.locator("h1").textContent(), "Test Merchant");
    assert.equal(await plain.locator(tid("merchant-logo")).count(), 0);
    await plain.close();
    await page.close();
  });

  test("transactions: date presets in the merchant's time zone, a paid-with column, filters that apply on change, and clear", async () => {
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/settings`);
    await page.fill(tid("time-zone-input"), "Asia/Kolkata");
    await page.click(tid("profile-save"));
    await page.locator(".notice", { hasText: "Profile saved." }).waitFor();
    const upi = await api(g, "POST", "/api/v1/payments", { order_id: await createOrder(g, 4100), method: "upi", vpa: "asha@okaxis" });
    const card = { number: "4111111111111111", expiry_month: "12", expiry_year: "2099", cvv: "123", holder_name: "Asha Rao" };
    const paid = await api(g, "POST", "/api/v1/payments", { order_id: await createOrder(g, 4200), method: "card", card });
    assert.equal(paid.status, 201);
    await page.goto(`${g.dashboard}/dashboard/transactions`);
    assert.match(await page.locator(tid("date-presets")).textContent(), /Dates in Asia\/Kolkata/);
    // "Today" in India, whatever the machine's zone.
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Kolkata" }).format(new Date());
    await page.getByRole("link", { name: "Today" }).click();
    await page.waitForURL((u) => u.searchParams.get("from") === today && u.searchParams.get("to") === today);
    assert.equal(await page.locator(tid("filter-from")).inputValue(), today);
    const row = (id) => page.locator(`${tid("transaction-row")}[data-payment-id="${id}"]`);
    assert.equal(await row(upi.body.id).locator(tid("paid-with")).textContent(), "asha@okaxis");
    assert.equal(await row(paid.body.id).locator(tid("paid-with")).textContent(), "Visa •••• 1111");
    assert.match(await row(upi.body.id).locator(tid("created-at")).textContent(), /IST$/);
    // A drop-down applies as it changes, with no button pressed.
    await page.selectOption(tid("filter-method"), "card");
    await page.waitForURL((u) => u.searchParams.get("method") === "card");
    assert.equal(new URL(page.url()).searchParams.get("from"), today, "the range is kept");
    assert.equal(await row(upi.body.id).count(), 0);
    await page.fill(tid("search-input"), paid.body.id);
    await page.press(tid("search-input"), "Enter");
    await page.waitForURL((u) => u.searchParams.get("q") === paid.body.id);
    assert.equal(await page.locator(tid("page-info")).textContent(), "1 payment");
    await shot(page, "settings-1280-transactions-filtered");
    await page.click(tid("clear-filters"));
    await page.waitForURL((u) => u.search === "");
    assert.match(await page.locator(tid("page-info")).textContent(), /^\d[\d,]* payments$/);
    assert.equal(await page.locator(tid("clear-filters")).count(), 0);
    // A range with nothing in it says so.
    await page.goto(`${g.dashboard}/dashboard/transactions?from=2001-01-01&to=2001-01-02`);
    assert.match(await page.locator(tid("transactions-empty")).textContent(), /No payments match these filters/);
    await page.close();
  });
});

test("no page, request or API call answered with a server error", () => assertNoServerErrors());
