// Hosted checkout and checkout.js in a real browser (Debian's Chromium).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { api, assertNoServerErrors, createOrder, freePort, launch, rupees, scrollsSideways, shot, startGateway, tid } from "./lib.mjs";

let g, browser;
before(async () => {
  g = await startGateway();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await g?.stop();
});

async function openCheckout(orderId, width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${g.checkout}/checkout?order_id=${orderId}`);
  await page.locator(tid("checkout-container")).waitFor();
  return page;
}

async function paymentsOf(orderId) {
  const all = await api(g, "GET", "/api/v1/payments?limit=100");
  return all.body.data.filter((p) => p.order_id === orderId);
}

/** The data-test-id of the focused element. */
const focused = (page) => page.evaluate(() => document.activeElement?.dataset.testId ?? null);

/** Holds every request matching `pattern` until `release()` is called; `seen` resolves at the
 * first one. (A test sees a waiting state for as long as it needs, not for a lucky moment.) */
async function hold(page, pattern) {
  let release, seen;
  const gate = new Promise((ok) => (release = ok));
  const first = new Promise((ok) => (seen = ok));
  await page.route(pattern, async (route) => {
    seen();
    await gate;
    await route.continue();
  });
  return { release, seen: first };
}

/** A merchant's "thank you" page on a free local port (another origin): `port` and `shop`. */
async function thanksPage() {
  const port = await freePort();
  const shop = createServer((req, res) => {
    res.setHeader("Content-Type", "text/html");
    res.end(`<!doctype html><html lang="en"><head><title>Shop</title></head><body><main><h1>Thanks</h1></main></body></html>`);
  });
  await new Promise((ok) => shop.listen(port, "127.0.0.1", ok));
  return { port, shop };
}

/** Fills the card form (a successful test card unless another number is given). */
async function fillCard(page, number = "4111 1111 1111 1111") {
  await page.fill(tid("card-number-input"), number);
  await page.fill(tid("expiry-input"), "12/30");
  await page.fill(tid("cvv-input"), "123");
  await page.fill(tid("cardholder-name-input"), "Asha Rao");
}

describe("hosted checkout", () => {
  test("UPI payment ends in success with the payment the database holds", async () => {
    const orderId = await createOrder(g, 50000);
    const page = await openCheckout(orderId);
    assert.equal(await page.locator(tid("order-amount")).textContent(), "₹500.00");
    assert.equal(await page.locator(tid("order-id")).textContent(), orderId);
    await shot(page, "checkout-1280-summary");
    await page.click(tid("method-upi"));
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "success@upi");
    await shot(page, "checkout-1280-upi-form");
    await page.click(tid("pay-button"));
    await page.locator(tid("processing-state")).waitFor({ state: "visible" });
    await shot(page, "checkout-1280-processing");
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await shot(page, "checkout-1280-success");
    const shown = await page.locator(tid("payment-id")).textContent();
    const [p] = await paymentsOf(orderId);
    assert.equal(p.id, shown);
    assert.equal(p.status, "success");
    assert.equal(p.method, "upi");
    await page.close();
  });

  test("amounts use the Indian digit grouping", async () => {
    const orderId = await createOrder(g, 123456700);
    const page = await openCheckout(orderId);
    assert.equal(await page.locator(tid("order-amount")).textContent(), "₹12,34,567.00");
    assert.equal(rupees(123456700), "₹12,34,567.00");
    await page.click(tid("method-upi"));
    assert.match(await page.locator(tid("pay-button")).textContent(), /Pay ₹12,34,567\.00/);
    await page.close();
  });

  test("card payment groups the number, shows the network, and succeeds", async () => {
    const orderId = await createOrder(g, 1999);
    const page = await openCheckout(orderId);
    await page.click(tid("method-card"));
    await page.locator(tid("card-number-input")).pressSequentially("4111111111111111");
    assert.equal(await page.inputValue(tid("card-number-input")), "4111 1111 1111 1111");
    assert.equal(await page.locator("#card-network").textContent(), "visa");
    await page.locator(tid("expiry-input")).pressSequentially("1230");
    assert.equal(await page.inputValue(tid("expiry-input")), "12/30");
    await page.fill(tid("cvv-input"), "123");
    await page.fill(tid("cardholder-name-input"), "Asha Rao");
    await shot(page, "checkout-1280-card-form");
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const [p] = await paymentsOf(orderId);
    assert.equal(p.status, "success");
    assert.equal(p.card_network, "visa");
    assert.equal(p.card_last4, "1111");
    assert.equal(await page.locator(tid("payment-id")).textContent(), p.id);
    await page.close();
  });

  test("a declined payment shows the error state and Try Again returns to the form", async () => {
    const orderId = await createOrder(g, 1000);
    const page = await openCheckout(orderId);
    await page.click(tid("method-upi"));
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "failure@upi");
    await page.click(tid("pay-button"));
    await page.locator(tid("error-state")).waitFor({ state: "visible", timeout: 15000 });
    await shot(page, "checkout-1280-error");
    assert.match(await page.locator(tid("error-message")).textContent(), /declined/i);
    const [p] = await paymentsOf(orderId);
    assert.equal(p.status, "failed");
    assert.equal(p.error_code, "PAYMENT_FAILED");
    await page.click(tid("retry-button"));
    await page.locator(tid("vpa-input")).waitFor({ state: "visible" });
    await page.fill(tid("vpa-input"), "success@upi");
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await page.close();
  });

  test("invalid inputs are stopped in the page, and the server rejects them too", async () => {
    const orderId = await createOrder(g, 1000);
    const page = await openCheckout(orderId);
    await page.click(tid("method-upi"));
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "not a vpa");
    await page.click(tid("pay-button"));
    assert.match(await page.locator("#vpa-error").textContent(), /valid UPI ID/);
    await page.click(tid("method-card"));
    await page.fill(tid("card-number-input"), "4111 1111 1111 1112");
    await page.fill(tid("expiry-input"), "01/20");
    await page.fill(tid("cvv-input"), "12");
    await page.click(tid("pay-button"));
    assert.match(await page.locator("#card-number-error").textContent(), /valid card number/);
    assert.match(await page.locator("#expiry-error").textContent(), /expired/);
    assert.match(await page.locator("#cvv-error").textContent(), /3 or 4 digits/);
    assert.ok(await page.locator(tid("card-form")).isVisible(), "still on the form");
    await shot(page, "checkout-1280-invalid");
    assert.equal((await paymentsOf(orderId)).length, 0, "nothing was sent");
    // Bypassing the page: the server applies the same rules.
    const bypass = async (body) => {
      const r = await page.evaluate(async (b) => {
        const res = await fetch("/api/v1/payments/public", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(b) });
        return { status: res.status, body: await res.json() };
      }, { order_id: orderId, ...body });
      return r;
    };
    const card = { number: "4111111111111112", expiry_month: "12", expiry_year: "30", cvv: "123", holder_name: "A" };
    assert.equal((await bypass({ method: "upi", vpa: "not a vpa" })).body.error.code, "INVALID_VPA");
    assert.equal((await bypass({ method: "card", card })).body.error.code, "INVALID_CARD");
    assert.equal((await bypass({ method: "card", card: { ...card, number: "4111111111111111", expiry_year: "20" } })).body.error.code, "EXPIRED_CARD");
    assert.equal((await paymentsOf(orderId)).length, 0);
    await page.close();
  });

  test("unknown and paid orders get a clear page", async () => {
    const page = await browser.newPage();
    const res = await page.goto(`${g.checkout}/checkout?order_id=order_AAAAAAAAAAAAAAAA`);
    assert.equal(res.status(), 404);
    assert.match(await page.textContent("h1"), /Order not found/);
    assert.equal(await page.locator(tid("pay-button")).count(), 0);
    await page.close();
  });

  test("fits 360 px and 1280 px wide screens without sideways scrolling", async () => {
    const orderId = await createOrder(g, 123456);
    for (const width of [360, 1280]) {
      const page = await openCheckout(orderId, width);
      await page.click(tid("method-card"));
      assert.equal(await scrollsSideways(page), false, `scrolls sideways at ${width}`);
      await shot(page, `checkout-${width}-card`);
      await page.close();
    }
  });

  test("works with the keyboard", async () => {
    const orderId = await createOrder(g, 1000);
    const page = await openCheckout(orderId);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), "method-upi");
    await page.keyboard.press("Enter");
    // UPI opens on its primary action: pay with a UPI app (the QR at this width).
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), "pay-button");
    await page.keyboard.press("Enter");
    await page.locator(tid("upi-waiting")).waitFor({ state: "visible" });
    await page.locator(tid("simulate-approve")).focus();
    await page.keyboard.press("Enter");
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await page.close();
  });

  test("UPI collect is reached with the keyboard too", async () => {
    const orderId = await createOrder(g, 1000);
    const page = await openCheckout(orderId);
    await page.click(tid("method-upi"));
    await page.locator(tid("upi-collect-toggle")).focus();
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.dataset.testId), "vpa-input");
    await page.keyboard.type("success@upi");
    await page.keyboard.press("Enter");
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await page.close();
  });
});

describe("checkout flow", () => {
  test("the page opens on UPI with its Pay button, and the next order opens on the method last used", async () => {
    const page = await openCheckout(await createOrder(g, 1500));
    assert.equal(await page.getAttribute(tid("method-upi"), "aria-pressed"), "true");
    assert.equal(await page.getAttribute(tid("method-card"), "aria-pressed"), "false");
    assert.ok(await page.locator(tid("upi-app-panel")).isVisible());
    assert.ok(await page.locator(tid("pay-button")).isEnabled());
    assert.match(await page.locator(tid("pay-button")).textContent(), /^Pay ₹15\.00$/);
    assert.equal(await page.locator(tid("card-form")).isVisible(), false);
    await shot(page, "checkout-1280-opened");
    await page.click(tid("method-card"));
    await fillCard(page);
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });

    // The same browser, a new order: the card form is open.
    await page.goto(`${g.checkout}/checkout?order_id=${await createOrder(g, 1600)}`);
    assert.equal(await page.getAttribute(tid("method-card"), "aria-pressed"), "true");
    assert.equal(await page.getAttribute(tid("method-upi"), "aria-pressed"), "false");
    assert.ok(await page.locator(tid("card-form")).isVisible());
    assert.ok(await page.locator(tid("pay-button")).isVisible());
    // Paying by UPI makes UPI the one remembered.
    await page.click(tid("method-upi"));
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "success@upi");
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await page.goto(`${g.checkout}/checkout?order_id=${await createOrder(g, 1700)}`);
    assert.equal(await page.getAttribute(tid("method-upi"), "aria-pressed"), "true");
    await page.close();
  });

  test("a browser whose localStorage throws still opens on UPI and pays", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // As in a sandboxed frame: any use of localStorage throws.
    await page.addInitScript(() => {
      Object.defineProperty(window, "localStorage", {
        configurable: true,
        get() { throw new DOMException("The document is sandboxed", "SecurityError"); },
      });
    });
    await page.goto(`${g.checkout}/checkout?order_id=${await createOrder(g, 1800)}`);
    assert.ok(await page.evaluate(() => { try { return !window.localStorage; } catch { return true; } }), "localStorage throws");
    assert.equal(await page.getAttribute(tid("method-upi"), "aria-pressed"), "true");
    await page.click(tid("method-card"));
    await fillCard(page);
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("Enter in a card field pays", async () => {
    const orderId = await createOrder(g, 2100);
    const page = await openCheckout(orderId);
    await page.click(tid("method-card"));
    await fillCard(page, "5555 5555 5555 4444");
    await page.locator(tid("expiry-input")).focus();
    await page.keyboard.press("Enter");
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const [p] = await paymentsOf(orderId);
    assert.equal(p.status, "success");
    assert.equal(p.card_last4, "4444");
    await page.close();
  });

  test("card: while processing the page says not to close it; focus moves to the status, then to the result", async () => {
    const orderId = await createOrder(g, 2200);
    const page = await openCheckout(orderId);
    await page.click(tid("method-card"));
    await fillCard(page);
    const polls = await hold(page, "**/api/v1/payments/*/public");
    await page.click(tid("pay-button"));
    await page.locator(tid("processing-state")).waitFor({ state: "visible" });
    assert.equal(await focused(page), "processing-message");
    await polls.seen;
    assert.match(await page.locator(tid("card-waiting-note")).textContent(), /Do not close this page/);
    assert.ok(await page.locator(tid("card-waiting-note")).isVisible());
    assert.equal(await page.locator(tid("upi-approve-note")).isVisible(), false);
    await shot(page, "checkout-1280-card-processing");
    polls.release();
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await focused(page), "success-message");
    await page.close();
  });

  test("UPI collect: waiting says to approve in the UPI app, with a countdown", async () => {
    const orderId = await createOrder(g, 2300);
    const page = await openCheckout(orderId);
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "success@upi");
    const polls = await hold(page, "**/api/v1/payments/*/public");
    await page.click(tid("pay-button"));
    await polls.seen;
    assert.equal(await focused(page), "processing-message");
    const note = page.locator(tid("upi-approve-note"));
    assert.ok(await note.isVisible());
    assert.match(await note.textContent(), /Approve the request in your UPI app/);
    assert.match(await page.locator(tid("processing-countdown")).textContent(), /^Expires in [45]:\d\d$/);
    assert.equal(await page.locator(tid("card-waiting-note")).isVisible(), false);
    await shot(page, "checkout-1280-upi-collect-waiting");
    polls.release();
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await focused(page), "success-message");
    assert.equal(await page.locator(tid("success-method")).textContent(), "UPI (success@upi)");
    await page.close();
  });

  test("UPI QR: focus moves to the status, then to the approval heading, then to the failure", async () => {
    const orderId = await createOrder(g, 2400);
    const page = await openCheckout(orderId);
    const start = await hold(page, "**/api/v1/payments/public");
    await page.click(tid("pay-button"));
    await start.seen;
    assert.ok(await page.locator(tid("processing-state")).isVisible());
    assert.equal(await focused(page), "processing-message");
    assert.ok(await page.locator(tid("upi-approve-note")).isVisible());
    start.release();
    await page.locator(tid("upi-waiting")).waitFor({ state: "visible" });
    assert.equal(await focused(page), "upi-waiting-heading");
    assert.equal(await page.locator(tid("upi-waiting-heading")).textContent(), "Approve the request in your UPI app");
    assert.match(await page.locator(tid("upi-countdown")).textContent(), /Expires in [45]:\d\d/);
    await page.click(tid("simulate-decline"));
    await page.locator(tid("error-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await focused(page), "error-heading");
    await page.close();
  });

  test("until the script runs the buttons are disabled and say so; then they work", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const script = await hold(page, "**/assets/checkout-page.js");
    await page.goto(`${g.checkout}/checkout?order_id=${await createOrder(g, 2500)}`, { waitUntil: "commit" });
    await script.seen;
    const button = page.locator(tid("pay-button"));
    await button.waitFor({ state: "visible" });
    assert.equal(await button.isDisabled(), true);
    assert.equal(await button.getAttribute("aria-disabled"), "true");
    assert.match(await button.textContent(), /Loading…/);
    for (const id of ["method-upi", "method-card", "upi-collect-toggle"]) {
      assert.equal(await page.locator(tid(id)).isDisabled(), true, `${id} is disabled`);
    }
    assert.equal(await page.locator("noscript").count(), 1);
    await shot(page, "checkout-1280-loading");
    script.release();
    await page.waitForSelector(`${tid("pay-button")}:not([disabled])`);
    assert.equal(await button.getAttribute("aria-disabled"), null);
    assert.equal(await button.textContent(), "Pay ₹25.00");
    assert.equal(await page.locator(tid("method-card")).isEnabled(), true);
    await page.close();
  });

  test("success shows the amount, the card and the merchant; a plain order has no return link", async () => {
    const orderId = await createOrder(g, 123456);
    const page = await openCheckout(orderId);
    await page.click(tid("method-card"));
    await fillCard(page, "5555 5555 5555 4444");
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await page.locator(tid("success-amount")).textContent(), rupees(123456));
    assert.equal(await page.locator(tid("success-method")).textContent(), "Mastercard •••• 4444");
    assert.equal(await page.locator(tid("success-merchant")).textContent(), "Test Merchant");
    assert.equal(await page.locator(tid("return-link")).count(), 0);
    // One h1, the merchant; the order id is small print, not a heading.
    assert.deepEqual(await page.locator("h1").allTextContents(), ["Test Merchant"]);
    assert.equal(await page.locator(`h1 ${tid("order-id")}, h2 ${tid("order-id")}`).count(), 0);
    await shot(page, "checkout-1280-success-card");
    await page.close();
  });

  test("a payment link's success offers Return to the merchant with the payment id, then goes back", async () => {
    const { port, shop } = await thanksPage();
    const callback = `http://127.0.0.1:${port}/paid`;
    const link = await api(g, "POST", "/api/v1/payment_links", { amount: 3000, callback_url: callback });
    assert.equal(link.status, 201, JSON.stringify(link.body));
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(link.body.short_url);
    await page.click(tid("link-pay-button"));
    await page.locator(tid("checkout-container")).waitFor();
    const back = await hold(page, "**/l/*/return*");
    await page.click(tid("method-card"));
    await fillCard(page);
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const returnLink = page.locator(tid("return-link"));
    assert.equal(await returnLink.textContent(), "Return to Test Merchant");
    const orderId = await page.getAttribute(tid("checkout-container"), "data-order-id");
    const [p] = await paymentsOf(orderId);
    const href = new URL(await returnLink.getAttribute("href"), g.checkout);
    assert.equal(href.pathname, `/l/${link.body.id}/return`);
    assert.equal(href.searchParams.get("payment_id"), p.id);
    assert.equal(await page.locator(tid("success-method")).textContent(), "Visa •••• 1111");
    await shot(page, "checkout-1280-success-return");
    // The page goes back on its own (payment links always did), to the merchant's callback.
    await back.seen;
    back.release();
    await page.waitForURL((u) => u.origin === `http://127.0.0.1:${port}` && u.searchParams.get("payment_id") === p.id, { timeout: 10000 });
    await page.close();
    shop.close();
  });

  test("an order's callback_url: success offers Return to the merchant with the payment id, then goes there", async () => {
    const { port, shop } = await thanksPage();
    const order = await api(g, "POST", "/api/v1/orders", { amount: 3100, callback_url: `http://127.0.0.1:${port}/thanks?cart=7` });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    const page = await openCheckout(order.body.id);
    const away = await hold(page, `http://127.0.0.1:${port}/**`);
    await page.click(tid("method-card"));
    await fillCard(page);
    await page.click(tid("pay-button"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const returnLink = page.locator(tid("return-link"));
    assert.equal(await returnLink.textContent(), "Return to Test Merchant");
    const [p] = await paymentsOf(order.body.id);
    const href = new URL(await returnLink.getAttribute("href"));
    assert.equal(href.pathname, "/thanks");
    assert.equal(href.searchParams.get("cart"), "7", "the merchant's own query is kept");
    assert.equal(href.searchParams.get("payment_id"), p.id);
    await away.seen;
    away.release();
    await page.waitForURL((u) => u.origin === `http://127.0.0.1:${port}` && u.searchParams.get("payment_id") === p.id, { timeout: 10000 });
    await page.close();
    // Inside the widget the page stays put: the merchant's page hears of it by message.
    const framed = await browser.newPage();
    await framed.goto(`${g.checkout}/checkout?order_id=${(await api(g, "POST", "/api/v1/orders", { amount: 3200, callback_url: `http://127.0.0.1:${port}/thanks` })).body.id}&embedded=true`);
    assert.equal(await framed.locator(tid("checkout-container")).getAttribute("data-return-url"), "");
    await framed.close();
    shop.close();
  });

  test("a failed payment offers the other method, which opens its form", async () => {
    const orderId = await createOrder(g, 2600);
    const page = await openCheckout(orderId);
    await page.click(tid("upi-collect-toggle"));
    await page.fill(tid("vpa-input"), "failure@upi");
    await page.click(tid("pay-button"));
    await page.locator(tid("error-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await focused(page), "error-heading");
    const other = page.locator(tid("other-method-button"));
    assert.equal(await other.textContent(), "Pay by card instead");
    assert.equal(await page.locator(tid("retry-button")).textContent(), "Try again");
    await shot(page, "checkout-1280-error-other-method");
    await other.click();
    assert.ok(await page.locator(tid("card-form")).isVisible());
    assert.equal(await page.getAttribute(tid("method-card"), "aria-pressed"), "true");
    assert.equal(await focused(page), "card-number-input");
    // And from a failed card payment, back to UPI.
    await fillCard(page, "4000 0000 0000 0002");
    await page.click(tid("pay-button"));
    await page.locator(tid("error-state")).waitFor({ state: "visible", timeout: 15000 });
    assert.equal(await other.textContent(), "Pay by UPI instead");
    await other.click();
    assert.equal(await page.getAttribute(tid("method-upi"), "aria-pressed"), "true");
    assert.ok(await page.locator(tid("vpa-input")).isVisible());
    await page.fill(tid("vpa-input"), "success@upi");
    await page.keyboard.press("Enter");
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const ps = await paymentsOf(orderId);
    assert.deepEqual(ps.map((p) => `${p.method} ${p.status}`).sort(), ["card failed", "upi failed", "upi success"]);
    await page.close();
  });
});

describe("UPI intent and QR", () => {
  test("at 1280 px the QR is shown and Simulate approve ends on the success page", async () => {
    const orderId = await createOrder(g, 50000);
    const page = await openCheckout(orderId);
    await page.click(tid("method-upi"));
    await page.click(tid("pay-button"));
    await page.locator(tid("upi-waiting")).waitFor({ state: "visible" });
    const qr = page.locator(tid("upi-qr"));
    await qr.waitFor({ state: "visible" });
    // The image loaded (an SVG from the page's own origin) and says what it is.
    const loaded = await qr.evaluate((img) =>
      img.complete && img.naturalWidth > 0
        ? true
        : new Promise((ok) => {
            img.addEventListener("load", () => ok(img.naturalWidth > 0), { once: true });
            img.addEventListener("error", () => ok(false), { once: true });
          }));
    assert.ok(loaded, "the QR image loads");
    const alt = await qr.getAttribute("alt");
    assert.match(alt, /₹500\.00/);
    assert.match(alt, /testmerchant@paygate/);
    assert.match(alt, /upi:\/\/pay\?/);
    assert.equal(await page.locator(tid("upi-intent-link")).isVisible(), false);
    assert.match(await page.locator(tid("upi-countdown")).textContent(), /Expires in [45]:\d\d/);
    await shot(page, "checkout-1280-upi-qr");
    const [pending] = await paymentsOf(orderId);
    assert.equal(pending.status, "pending");
    assert.equal(pending.upi.flow, "qr");
    await page.click(tid("simulate-approve"));
    await page.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    const [p] = await paymentsOf(orderId);
    assert.equal(p.status, "success");
    assert.equal(await page.locator(tid("payment-id")).textContent(), p.id);
    await page.close();
  });

  test("at 390 px the intent button carries the upi://pay link; Simulate decline fails it", async () => {
    const orderId = await createOrder(g, 2500);
    const page = await openCheckout(orderId, 390);
    await page.click(tid("method-upi"));
    await page.click(tid("pay-button"));
    const link = page.locator(tid("upi-intent-link"));
    await link.waitFor({ state: "visible" });
    const [p] = await paymentsOf(orderId);
    assert.equal(p.upi.flow, "intent");
    assert.equal(await link.getAttribute("href"), p.upi.uri);
    assert.match(p.upi.uri, /^upi:\/\/pay\?pa=testmerchant%40paygate&pn=Test%20Merchant&am=25\.00&cu=INR&tr=pay_/);
    assert.equal(await page.locator(tid("upi-qr")).isVisible(), false);
    assert.equal(await scrollsSideways(page), false);
    await shot(page, "checkout-390-upi-intent");
    await page.click(tid("simulate-decline"));
    await page.locator(tid("error-state")).waitFor({ state: "visible", timeout: 15000 });
    const [failed] = await paymentsOf(orderId);
    assert.equal(failed.status, "failed");
    await page.close();
  });
});

describe("checkout.js", () => {
  let shop, shopUrl;
  before(async () => {
    const port = await freePort();
    shopUrl = `http://127.0.0.1:${port}`;
    // A merchant page on another origin.
    shop = createServer((req, res) => {
      res.setHeader("Content-Type", "text/html");
      res.end(`<!doctype html><html lang="en"><head><title>Shop</title></head><body><main><h1>Shop</h1><button id="pay">Pay</button></main>
<script src="${g.checkout}/checkout.js"></script>
<script>
  window.events = [];
  document.getElementById("pay").onclick = () => {
    window.gw = new PaymentGateway({ key: "key_test_abc123", orderId: new URLSearchParams(location.search).get("order"),
      onSuccess: (d) => events.push({ type: "success", d }),
      onFailure: (d) => events.push({ type: "failure", d }),
      onClose: () => events.push({ type: "close" }) });
    window.gw.open();
  };
</script></body></html>`);
    });
    await new Promise((ok) => shop.listen(port, "127.0.0.1", ok));
  });
  after(() => shop?.close());

  test("open() shows the modal, paying fires onSuccess with the payment id and closes it", async () => {
    const orderId = await createOrder(g, 2500);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${shopUrl}/?order=${orderId}`);
    await page.click("#pay");
    await page.locator(tid("payment-modal")).waitFor();
    assert.equal(await page.locator("#payment-gateway-modal iframe" + tid("payment-iframe")).count(), 1);
    const frame = page.frameLocator(tid("payment-iframe"));
    await frame.locator(tid("method-upi")).click();
    await frame.locator(tid("upi-collect-toggle")).click();
    await frame.locator(tid("vpa-input")).fill("success@upi");
    await shot(page, "sdk-1280-modal");
    await frame.locator(tid("pay-button")).click();
    await page.locator(tid("payment-modal")).waitFor({ state: "detached", timeout: 15000 });
    const events = await page.evaluate(() => window.events);
    const success = events.find((e) => e.type === "success");
    assert.ok(success, JSON.stringify(events));
    const [p] = await paymentsOf(orderId);
    assert.equal(success.d.paymentId, p.id);
    assert.equal(p.status, "success");
    await page.close();
  });

  test("the close button and Escape fire onClose; a forged message is ignored", async () => {
    const orderId = await createOrder(g, 2500);
    const page = await browser.newPage();
    await page.goto(`${shopUrl}/?order=${orderId}`);
    await page.click("#pay");
    await page.locator(tid("payment-modal")).waitFor();
    // A message from this (foreign) origin claiming success is not believed.
    await page.evaluate(() => window.postMessage({ type: "payment_success", data: { paymentId: "pay_forged" } }, "*"));
    await page.waitForTimeout(300);
    assert.equal(await page.locator(tid("payment-modal")).count(), 1, "the modal stays open");
    assert.deepEqual(await page.evaluate(() => window.events), []);
    await page.click(tid("close-modal-button"));
    assert.equal(await page.locator(tid("payment-modal")).count(), 0);
    assert.deepEqual(await page.evaluate(() => window.events.map((e) => e.type)), ["close"]);
    await page.click("#pay");
    await page.locator(tid("payment-modal")).waitFor();
    await page.keyboard.press("Escape");
    assert.equal(await page.locator(tid("payment-modal")).count(), 0);
    assert.deepEqual(await page.evaluate(() => window.events.map((e) => e.type)), ["close", "close"]);
    await page.close();
  });

  test("checkout.js also works as a module import", async () => {
    const page = await browser.newPage();
    await page.goto(`${shopUrl}/`);
    const defined = await page.evaluate(async (src) => {
      delete window.PaymentGateway;
      const s = document.createElement("script");
      s.type = "module";
      s.textContent = `import "${src}"; window.moduleLoaded = typeof window.PaymentGateway;`;
      document.body.appendChild(s);
      for (let i = 0; i < 100 && !window.moduleLoaded; i++) await new Promise((r) => setTimeout(r, 20));
      return window.moduleLoaded;
    }, `${g.checkout}/checkout.js?as=module`);
    assert.equal(defined, "function");
    await page.close();
  });

  test("the constructor requires key and orderId", async () => {
    const page = await browser.newPage();
    await page.goto(`${shopUrl}/`);
    const error = await page.evaluate(() => { try { new PaymentGateway({ key: "k" }); return null; } catch (e) { return e.message; } });
    assert.match(error, /orderId/);
    await page.close();
  });

  test("the demo shop sells through the widget", async () => {
    const page = await browser.newPage({ viewport: { width: 360, height: 800 } });
    await page.goto(`${g.checkout}/demo`);
    assert.equal(await scrollsSideways(page), false);
    await page.click(tid("demo-buy"));
    const frame = page.frameLocator(tid("payment-iframe"));
    await frame.locator(tid("method-card")).click();
    await frame.locator(tid("card-number-input")).fill("4111 1111 1111 1111");
    await frame.locator(tid("expiry-input")).fill("12/30");
    await frame.locator(tid("cvv-input")).fill("123");
    await frame.locator(tid("cardholder-name-input")).fill("Asha Rao");
    await shot(page, "demo-360-widget");
    await frame.locator(tid("pay-button")).click();
    await page.locator(tid("payment-modal")).waitFor({ state: "detached", timeout: 15000 });
    assert.match(await page.locator(tid("demo-status")).textContent(), /Paid! Payment pay_/);
    await page.close();
  });
});

test("no page, request or API call answered with a server error", () => assertNoServerErrors());
