// The merchant dashboard in a real browser (Debian's Chromium).
import crypto from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { api, assertNoServerErrors, createOrder, freePort, launch, root, rupees, scrollsSideways, shot, startGateway, tid, webhookSink } from "./lib.mjs";

let g, browser, hook, hookUrl, received;
before(async () => {
  g = await startGateway({ TEST_PROCESSING_DELAY: "200", WEBHOOK_ENDPOINT_DISABLE_AFTER: "1" });
  browser = await launch();
  hook = await webhookSink();
  ({ url: hookUrl, received } = hook);
});
after(async () => {
  hook?.close();
  await browser?.close();
  await g?.stop();
});

async function login(email = "test@example.com", password = "password123", width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${g.dashboard}/login`);
  await page.fill(tid("email-input"), email);
  await page.fill(tid("password-input"), password);
  await page.click(tid("login-button"));
  return page;
}

async function pay(vpa, amount) {
  const orderId = await createOrder(g, amount);
  const r = await api(g, "POST", "/api/v1/payments", { order_id: orderId, method: "upi", vpa });
  return r.body.id;
}

async function waitFinal(id) {
  for (let i = 0; i < 200; i++) {
    const r = await api(g, "GET", `/api/v1/payments/${id}`);
    if (r.body.status !== "pending") return r.body;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`${id} still pending`);
}

describe("dashboard", () => {
  test("login works with the right password only, and pages need a session", async () => {
    const anon = await browser.newPage();
    for (const path of ["/dashboard", "/dashboard/transactions", "/dashboard/webhooks", "/dashboard/docs"]) {
      await anon.goto(g.dashboard + path);
      assert.equal(new URL(anon.url()).pathname, "/login", path);
    }
    await shot(anon, "dashboard-1280-login");
    await anon.close();
    const wrong = await login("test@example.com", "wrong-password");
    assert.equal(new URL(wrong.url()).pathname, "/login");
    assert.match(await wrong.locator(tid("login-error")).textContent(), /Invalid email or password/);
    assert.equal(await wrong.locator(tid("email-input")).inputValue(), "test@example.com", "the email stays typed");
    await wrong.close();
    const page = await login();
    assert.equal(new URL(page.url()).pathname, "/dashboard");
    await page.locator(tid("dashboard")).waitFor();
    assert.equal(await page.locator(tid("api-key")).textContent(), "key_test_abc123");
    assert.equal(await page.locator(tid("api-secret")).textContent(), "secret_test_xyz789");
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "paygate_session");
    assert.ok(session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
    await page.click(tid("logout-button"));
    await page.goto(`${g.dashboard}/dashboard`);
    assert.equal(new URL(page.url()).pathname, "/login");
    await page.close();
  });

  test("stats, table and export match the database after mixed payments", async () => {
    const ids = [];
    for (const [vpa, amount] of [["success@upi", 10000], ["success@upi", 123456700], ["failure@upi", 7000], ["success@upi", 999], ["failure@upi", 100]]) {
      ids.push(await pay(vpa, amount));
    }
    for (const id of ids) await waitFinal(id);
    const all = (await api(g, "GET", "/api/v1/payments?limit=100")).body.data;
    const ok = all.filter((p) => p.status === "success");
    const sum = ok.reduce((s, p) => s + p.amount, 0);
    const expectedRate = Math.round((ok.length * 100) / all.length);
    const page = await login();
    assert.equal(await page.locator(tid("total-transactions")).textContent(), String(all.length));
    assert.equal(await page.locator(tid("total-amount")).textContent(), rupees(sum));
    assert.equal(rupees(sum), "₹12,34,676.99", "Indian digit grouping");
    assert.equal(await page.locator(tid("success-rate")).textContent(), `${expectedRate}%`);
    // Gross, refunded and net: what the API says was refunded of the merchant's payments.
    const refunded = all.reduce((s, p) => s + (p.amount_refunded ?? 0), 0);
    assert.equal(await page.locator(tid("total-refunded")).textContent(), rupees(refunded));
    assert.equal(await page.locator(tid("net-amount")).textContent(), rupees(sum - refunded));
    // The chart has a value axis: zero, half the highest day, the highest day.
    const ticks = await page.locator(tid("chart-tick")).allTextContents();
    assert.equal(ticks.length, 3, ticks.join());
    assert.equal(ticks[0], "₹0");
    await shot(page, "dashboard-1280-overview");
    await page.goto(`${g.dashboard}/dashboard/transactions`);
    const rows = page.locator(tid("transaction-row"));
    assert.equal(await rows.count(), all.length);
    for (const p of all) {
      const row = page.locator(`${tid("transaction-row")}[data-payment-id="${p.id}"]`);
      assert.equal(await row.locator(tid("status")).textContent(), p.status);
      assert.equal(await row.locator(tid("order-id")).textContent(), p.order_id);
      assert.equal(await row.locator(tid("amount")).textContent(), rupees(p.amount));
      assert.equal(await row.locator(tid("method")).textContent(), "upi");
      // A readable date, with the exact time for machines and on hover.
      const time = row.locator(`${tid("created-at")} time`);
      assert.equal(await time.getAttribute("datetime"), p.created_at);
      assert.equal(await time.getAttribute("title"), p.created_at);
      const d = new Date(p.created_at);
      const readable = `${d.getUTCDate()} ${d.toLocaleString("en-GB", { month: "short", timeZone: "UTC" })} ${d.getUTCFullYear()}`;
      assert.ok((await time.textContent()).startsWith(readable), `${await time.textContent()} / ${readable}`);
    }
    await shot(page, "dashboard-1280-transactions");
    // Filter and search.
    await page.selectOption(tid("filter-status"), "failed");
    await page.click(tid("filter-button"));
    assert.equal(await rows.count(), all.filter((p) => p.status === "failed").length);
    await page.goto(`${g.dashboard}/dashboard/transactions?q=${all[0].order_id}`);
    assert.equal(await rows.count(), 1);
    // The export of the filtered set.
    const csv = await page.evaluate(async () => (await fetch("/dashboard/transactions.csv?status=success")).text());
    const lines = csv.trim().split("\n");
    assert.equal(lines[0], "payment_id,order_id,amount,currency,method,status,captured,amount_refunded,created_at,fee,tax");
    assert.equal(lines.length - 1, ok.length);
    assert.equal(lines.slice(1).reduce((s, l) => s + Number(l.split(",")[2]), 0), sum);
    // Each successful payment's fee and tax, as the API shows them.
    for (const line of lines.slice(1)) {
      const cells = line.split(",");
      const p = ok.find((x) => x.id === cells[0]);
      assert.deepEqual([Number(cells[9]), Number(cells[10])], [p.fee, p.tax]);
    }
    await page.close();
  });

  test("the 30-day chart labels its days, shows a bar's figures on focus, and has a table", async () => {
    const all = (await api(g, "GET", "/api/v1/payments?limit=100")).body.data;
    const today = new Date().toISOString().slice(0, 10);
    const mine = all.filter((p) => p.created_at.startsWith(today));
    assert.ok(mine.length > 0, "payments were made today");
    const collected = mine.filter((p) => p.status === "success").reduce((s, p) => s + p.amount, 0);
    const page = await login();
    const labels = await page.locator(tid("chart-day-label")).allTextContents();
    assert.ok(labels.length >= 5, labels.join(" | "));
    const d = new Date();
    const todayLabel = `${d.getUTCDate()} ${d.toLocaleString("en-GB", { month: "short", timeZone: "UTC" })}`;
    assert.equal(labels.at(-1), todayLabel, "the last label is today");
    assert.equal(await page.locator(tid("chart-bar")).count(), 30);
    // The figures of a bar appear when it has the focus (keyboard), and on hover.
    const bar = page.locator(`${tid("chart-bar")}[data-day="${today}"]`);
    const value = bar.locator(tid("chart-value"));
    assert.equal(await value.isVisible(), false, "hidden until focused");
    await bar.focus();
    assert.equal(await value.isVisible(), true, "shown on focus");
    assert.ok((await value.textContent()).includes(rupees(collected)), await value.textContent());
    assert.ok((await bar.getAttribute("aria-label")).includes(`${mine.length} payments`), await bar.getAttribute("aria-label"));
    await page.mouse.move(0, 0);
    await page.locator(tid("total-amount")).focus();
    const other = page.locator(tid("chart-bar")).first();
    await other.locator("rect.hit").hover();
    assert.equal(await other.locator(tid("chart-value")).isVisible(), true, "shown on hover");
    // The same figures as a table, for screen readers.
    await page.locator(`${tid("chart-data")} summary`).click();
    const row = page.locator(`${tid("chart-row")}[data-day="${today}"] td`);
    const cells = await row.allTextContents();
    assert.equal(cells[1], String(mine.length));
    assert.equal(cells[2], String(mine.filter((p) => p.status === "success").length));
    assert.equal(cells[3], rupees(collected));
    await shot(page, "dashboard-1280-chart");
    await page.close();
  });

  test("the transactions table is usable at 390 px: every cell of a row is on screen", async () => {
    const page = await login("test@example.com", "password123", 390);
    await page.goto(`${g.dashboard}/dashboard/transactions`);
    const row = page.locator(tid("transaction-row")).first();
    for (const cell of ["payment-id", "order-id", "amount", "method", "status", "created-at"]) {
      const box = await row.locator(tid(cell)).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${cell} is off screen: ${JSON.stringify(box)}`);
      assert.ok(await row.locator(tid(cell)).isVisible(), `${cell} hidden`);
    }
    const wrap = await page.evaluate(() => {
      const el = document.querySelector('[data-test-id="transactions-table"]').parentElement;
      return { scroll: el.scrollWidth, client: el.clientWidth };
    });
    assert.ok(wrap.scroll <= wrap.client, `the table scrolls inside its box: ${JSON.stringify(wrap)}`);
    await shot(page, "dashboard-390-transactions-rows");
    await page.close();
  });

  test("a capture and a refund made on the payment page show up in the API and the timeline", async () => {
    const id = await pay("success@upi", 20000);
    const paid = await waitFinal(id);
    assert.deepEqual([paid.fee, paid.tax], [400, 72], "2 % of ₹200.00, GST 18 % of that");
    const page = await login();
    // The overview shows what payments cost.
    assert.match(await page.locator(tid("pricing-upi")).textContent(), /UPI: 2\.00 % of the amount \+ GST 18\.00 % of the fee/);
    await page.goto(`${g.dashboard}/dashboard/payments/${id}`);
    assert.equal(await page.locator(tid("payment-fee")).textContent(), "₹4.00");
    assert.equal(await page.locator(tid("payment-tax")).textContent(), "₹0.72");
    await page.click(tid("capture-button"));
    await page.locator(".notice", { hasText: "captured" }).waitFor();
    assert.equal(await page.locator(tid("payment-captured")).textContent(), "yes");
    assert.equal((await api(g, "GET", `/api/v1/payments/${id}`)).body.captured, true);
    // Amounts are typed in rupees; the form starts with all that is left.
    assert.equal(await page.locator(tid("refund-amount-input")).inputValue(), "200.00");
    await page.fill(tid("refund-amount-input"), "12.345");
    await page.click(tid("refund-button"));
    await page.locator(".notice", { hasText: "at most 2 decimals" }).waitFor();
    await page.fill(tid("refund-amount-input"), "50");
    await page.fill(tid("refund-reason-input"), "damaged box");
    await page.click(tid("refund-button"));
    // A step that states the refund before it is made: nothing refunded yet.
    assert.equal(await page.locator(tid("refund-confirm-amount")).textContent(), rupees(5000));
    assert.match(await page.locator(tid("refund-confirm")).textContent(), /damaged box/);
    await shot(page, "dashboard-1280-refund-confirm");
    assert.equal((await api(g, "GET", `/api/v1/payments/${id}/refunds`)).body.data.length, 0);
    await page.click(tid("refund-confirm-button"));
    await page.locator(".notice", { hasText: "Refund rfnd_" }).waitFor();
    await page.locator(tid("refund-row")).waitFor();
    const refunds = (await api(g, "GET", `/api/v1/payments/${id}/refunds`)).body.data;
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0].amount, 5000);
    assert.equal(refunds[0].reason, "damaged box");
    const timeline = await page.locator(tid("timeline-event")).allTextContents();
    assert.ok(timeline.some((t) => t.startsWith("payment.captured")), timeline.join(" | "));
    assert.ok(timeline.some((t) => t.startsWith("payment.success")), timeline.join(" | "));
    // The refund's own events are on the refund; the payment shows the refund.
    assert.equal(await page.locator(`${tid("refund-row")}[data-refund-id="${refunds[0].id}"]`).count(), 1);
    // Asking for more than is left is refused with the API's message.
    assert.equal(await page.locator(tid("refund-amount-input")).inputValue(), "150.00");
    await page.fill(tid("refund-amount-input"), "999999");
    await page.click(tid("refund-button"));
    await page.locator(".notice", { hasText: "exceeds" }).waitFor();
    assert.match(await page.locator(".notice").textContent(), /exceeds available amount: ₹150\.00 is left/);
    await shot(page, "dashboard-1280-payment");
    await page.close();
  });

  test("webhook URL, secret, test and retry all work from the page", async () => {
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/webhooks`);
    // No endpoint yet: the table says what they are for.
    assert.match(await page.locator(tid("endpoints-empty")).textContent(), /No endpoints yet/);
    await page.fill(tid("webhook-url-input"), hookUrl);
    await page.click(tid("save-webhook-button"));
    await page.locator(".notice").waitFor();
    assert.match(await page.locator(".notice").textContent(), /saved/);
    assert.equal((await api(g, "GET", "/api/v1/webhooks/config")).body.webhook_url, hookUrl);
    const before = await page.locator(tid("webhook-secret")).textContent();
    await page.click(tid("regenerate-secret-button"));
    await page.check(tid("overlap-now"));
    await page.click(tid("rotate-confirm-button"));
    await page.locator(".notice", { hasText: "secret" }).waitFor();
    const afterSecret = await page.locator(tid("webhook-secret")).textContent();
    assert.notEqual(afterSecret, before);
    assert.match(afterSecret, /^whsec_/);
    assert.equal((await api(g, "GET", "/api/v1/webhooks/config")).body.webhook_secret, afterSecret);
    hook.status = 500;
    await page.click(tid("test-webhook-button"));
    await page.locator(".notice", { hasText: "Test webhook sent" }).waitFor();
    const item = page.locator(tid("webhook-log-item")).first();
    assert.equal(await item.locator(tid("webhook-event")).textContent(), "webhook.test");
    assert.equal(await item.locator(tid("webhook-response-code")).textContent(), "500");
    assert.equal(await item.locator(tid("webhook-attempts")).textContent(), "1");
    // A failed attempt with more to come reads "retrying", with the next attempt's time.
    assert.match(await item.locator(tid("webhook-status")).textContent(), /^retrying/);
    await item.locator(tid("webhook-next-retry")).waitFor();
    await page.selectOption(tid("filter-state"), "retrying");
    await page.click(tid("filter-button"));
    assert.match(page.url(), /state=retrying/);
    const retrying = await page.locator(tid("webhook-status")).allTextContents();
    assert.ok(retrying.length >= 1 && retrying.every((t) => t.startsWith("retrying")), retrying.join());
    await page.selectOption(tid("filter-state"), "failed");
    await page.click(tid("filter-button"));
    await page.locator(tid("deliveries-empty")).waitFor();
    await page.click(tid("retry-all-failed-button"));
    await page.locator(".notice", { hasText: "No failed deliveries to retry." }).waitFor();
    assert.equal(received.length, 1);
    hook.status = 200;
    await item.locator(tid("retry-webhook-button")).click();
    await page.locator(".notice", { hasText: "retry scheduled" }).waitFor();
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((ok) => setTimeout(ok, 50));
    assert.equal(received.length, 2);
    // The attempt is recorded just after the receiver answers.
    const again = page.locator(tid("webhook-log-item")).first();
    for (let i = 0; i < 50; i++) {
      await page.reload();
      if ((await again.locator(tid("webhook-status")).textContent()) === "success") break;
      await page.waitForTimeout(100);
    }
    assert.equal(await again.locator(tid("webhook-status")).textContent(), "success");
    assert.equal(await again.locator(tid("webhook-response-code")).textContent(), "200");
    await shot(page, "dashboard-1280-webhooks");
    await page.close();
  });

  test("webhook endpoints: add with a filter, see deliveries and health, disable, rotate, replay, delete", async () => {
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/webhooks`);
    const endpointUrl = hookUrl.replace(/\/hook$/, "/endpoint-success");
    await page.fill(tid("endpoint-url-input"), endpointUrl);
    await page.fill(tid("endpoint-events-input"), "payment.success");
    await page.fill(tid("endpoint-description-input"), "fulfilment");
    await page.click(tid("endpoint-add-button"));
    await page.locator(".notice", { hasText: "added" }).waitFor();
    const row = page.locator(tid("webhook-endpoint-item"), { hasText: endpointUrl });
    assert.equal(await row.locator(tid("endpoint-events")).textContent(), "payment.success");
    assert.equal(await row.locator(tid("endpoint-state")).textContent(), "enabled");
    assert.equal(await row.locator(tid("endpoint-success")).textContent(), "no deliveries yet");
    const id = await row.getAttribute("data-endpoint-id");
    const listed = await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`);
    assert.deepEqual(listed.body.events, ["payment.success"]);
    // A successful payment: the endpoint gets its payment.success, and only that.
    const orderId = await createOrder(g, 12300);
    const pay = await api(g, "POST", "/api/v1/payments", { order_id: orderId, method: "upi", vpa: "success@upi" });
    await waitFinal(pay.body.id);
    const mine = () => received.filter((r) => r.path === "/endpoint-success");
    for (let i = 0; i < 200 && !mine().some((r) => r.body.includes(pay.body.id)); i++) await new Promise((ok) => setTimeout(ok, 50));
    const got = mine().filter((r) => r.body.includes(pay.body.id)).map((r) => JSON.parse(r.body).event);
    assert.deepEqual(got, ["payment.success"]);
    await page.goto(`${g.dashboard}/dashboard/webhooks`);
    assert.match(await row.locator(tid("endpoint-success")).textContent(), /^100 % of \d+$/);
    assert.ok(await page.locator(tid("webhook-endpoint"), { hasText: endpointUrl }).count() >= 1, "the log names the endpoint");
    // Disable, then enable.
    await row.locator("summary").click();
    await row.locator(tid("endpoint-toggle-button")).click();
    await page.locator(".notice", { hasText: "disabled" }).waitFor();
    assert.equal(await row.locator(tid("endpoint-state")).textContent(), "disabled");
    assert.equal((await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).body.enabled, false);
    await row.locator("summary").click();
    await row.locator(tid("endpoint-toggle-button")).click();
    await page.locator(".notice", { hasText: "enabled" }).waitFor();
    // Rotate: a new secret, the old one signing for 24 hours.
    const before = (await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).body.secret;
    await row.locator("summary").click();
    await row.locator(tid("endpoint-rotate-button")).click();
    await page.locator(".notice", { hasText: "24 hours" }).waitFor();
    const after = (await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).body;
    assert.notEqual(after.secret, before);
    assert.ok(after.previous_secret_expires_at);
    await row.locator("summary").click();
    assert.equal(await row.locator(tid("endpoint-secret")).textContent(), after.secret);
    await row.locator(tid("endpoint-overlap")).waitFor();
    // Replay the last day: the payment.success again, with the same event id.
    const eventId = JSON.parse(mine().find((r) => r.body.includes(pay.body.id)).body).id;
    const count = mine().length;
    await row.locator(tid("endpoint-replay-button")).click();
    await page.locator(".notice", { hasText: "Replay queued" }).waitFor();
    assert.match(await page.locator(".notice").textContent(), /Replay queued [1-9]\d* deliveries/);
    for (let i = 0; i < 200 && mine().length <= count; i++) await new Promise((ok) => setTimeout(ok, 50));
    assert.ok(mine().slice(count).some((r) => r.headers["webhook-id"] === eventId), "replayed with the same id");
    // A test event to this endpoint alone.
    const tests = () => mine().filter((r) => JSON.parse(r.body).event === "webhook.test").length;
    await row.locator("summary").click();
    await row.locator(tid("endpoint-test-button")).click();
    await page.locator(".notice", { hasText: "Test webhook queued" }).waitFor();
    for (let i = 0; i < 200 && tests() === 0; i++) await new Promise((ok) => setTimeout(ok, 50));
    assert.equal(tests(), 1);
    // Edit the filter, then delete.
    await row.locator("summary").click();
    await row.locator(tid("endpoint-edit-events")).fill("refund.*");
    await row.locator(tid("endpoint-save-button")).click();
    await page.locator(".notice", { hasText: "saved" }).waitFor();
    assert.equal(await row.locator(tid("endpoint-events")).textContent(), "refund.*");
    await shot(page, "dashboard-1280-webhook-endpoints");
    await row.locator("summary").click();
    await row.locator(tid("endpoint-delete-button")).click();
    await page.locator(".notice", { hasText: "deleted" }).waitFor();
    assert.equal(await page.locator(tid("webhook-endpoint-item"), { hasText: endpointUrl }).count(), 0);
    assert.equal((await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).status, 404);
    await page.close();
  });

  test("an endpoint whose every attempt fails is disabled by paygate, and the page says so", async () => {
    // A port nothing listens on: every attempt fails. This gateway disables an endpoint
    // failing for 1 s: the first attempt fails, and a retry made after that second fails too.
    const dead = `http://127.0.0.1:${await freePort()}/gone`;
    const created = await api(g, "POST", "/api/v1/webhooks/endpoints", { url: dead, events: ["payment.created"] });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await createOrder(g, 4500).then((orderId) => api(g, "POST", "/api/v1/payments", { order_id: orderId, method: "upi", vpa: "success@upi" }));
    let e;
    for (let i = 0; i < 300; i++) {
      e = (await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).body;
      if (e.failing_since) break;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.ok(e.failing_since, "the first attempt failed");
    while (Date.now() <= Date.parse(e.failing_since) + 1100) await new Promise((ok) => setTimeout(ok, 50));
    const log = (await api(g, "GET", "/api/v1/webhooks?limit=100")).body.data;
    const delivery = log.find((d) => d.endpoint_id === id);
    assert.equal((await api(g, "POST", `/api/v1/webhooks/${delivery.id}/retry`, {})).status, 200);
    for (let i = 0; i < 300; i++) {
      e = (await api(g, "GET", `/api/v1/webhooks/endpoints/${id}`)).body;
      if (!e.enabled) break;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(e.enabled, false);
    assert.equal(e.disabled_reason, "failing");
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/webhooks`);
    const row = page.locator(tid("webhook-endpoint-item"), { hasText: dead });
    assert.equal((await row.locator(tid("endpoint-state")).textContent()).startsWith("disabled"), true);
    assert.match(await row.locator(tid("endpoint-auto-disabled")).textContent(), /every attempt failed since/);
    assert.match(await row.locator(tid("endpoint-last-failure")).textContent(), /\d{4}/);
    await page.close();
    await api(g, "DELETE", `/api/v1/webhooks/endpoints/${id}`);
  });

  test("the UPI ID set on the overview is the payee of intent payments, and an invalid one is refused", async () => {
    const page = await login();
    await page.locator(tid("upi-id-input")).waitFor();
    assert.equal(await page.inputValue(tid("upi-id-input")), "testmerchant@paygate");
    await page.fill(tid("upi-id-input"), "not a vpa");
    await page.click(tid("upi-id-save"));
    await page.locator("text=not a valid VPA").waitFor();
    assert.equal((await api(g, "GET", "/api/v1/merchant")).body.upi_id, "testmerchant@paygate");
    await page.fill(tid("upi-id-input"), "shop.counter@okaxis");
    await page.click(tid("upi-id-save"));
    await page.locator("text=UPI ID saved.").waitFor();
    assert.equal(await page.inputValue(tid("upi-id-input")), "shop.counter@okaxis");
    // The API answers the new payee within its credential cache (1 s).
    let me;
    for (let i = 0; i < 40; i++) {
      me = (await api(g, "GET", "/api/v1/merchant")).body;
      if (me.upi_id === "shop.counter@okaxis") break;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(me.upi_id, "shop.counter@okaxis");
    const orderId = await createOrder(g, 10000);
    const p = await api(g, "POST", "/api/v1/payments", { order_id: orderId, method: "upi", upi: { flow: "intent" } });
    assert.equal(p.status, 201);
    assert.match(p.body.upi.uri, /^upi:\/\/pay\?pa=shop\.counter%40okaxis&/);
    // Back to the seeded payee for the other tests.
    await page.fill(tid("upi-id-input"), "testmerchant@paygate");
    await page.click(tid("upi-id-save"));
    await page.locator("text=UPI ID saved.").waitFor();
    await page.close();
  });

  test("the docs show working snippets with the merchant's own key", async () => {
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/docs`);
    const create = await page.locator(tid("code-snippet-create-order")).textContent();
    assert.ok(create.includes("key_test_abc123") && create.includes(`${g.api}/api/v1/orders`));
    const cmd = create.replace(/\\\n/g, " ");
    const out = execFileSync("bash", ["-c", cmd]).toString();
    assert.equal(JSON.parse(out).status, "created", out);
    assert.ok((await page.locator(tid("code-snippet-sdk")).textContent()).includes(`${g.checkout}/checkout.js`));
    const hookCode = await page.locator(tid("code-snippet-webhook")).textContent();
    assert.ok(hookCode.includes("standardwebhooks") && hookCode.includes("x-webhook-signature"));
    // The several-signatures snippet accepts a header in which any one v1 signature is right.
    const several = await page.locator(tid("code-snippet-several-signatures")).textContent();
    const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
    const run = (header) => new Function("crypto", "secret", "headers", "rawBody", `${several}\nreturn ok;`)(
      crypto, secret, { "webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": header }, '{"a":1}');
    const good = crypto.createHmac("sha256", Buffer.from("0123456789abcdef0123456789abcdef"))
      .update('evt_1.1700000000.{"a":1}').digest("base64");
    const bogus = Buffer.alloc(32, 7).toString("base64");
    assert.equal(run(`v1,${bogus} v1,${good}`), true);
    assert.equal(run(`v1,${good}`), true);
    assert.equal(run(`v1,${bogus}`), false);
    assert.equal(run(`v2,${good}`), false);
    await shot(page, "dashboard-1280-docs");
    await page.close();
  });

  test("the API reference renders the served OpenAPI document with the vendored renderer", async () => {
    const page = await login();
    const blocked = [];
    page.on("console", (m) => { if (/Content Security Policy|Refused to/.test(m.text())) blocked.push(m.text()); });
    page.on("pageerror", (e) => blocked.push(String(e)));
    await page.goto(`${g.dashboard}/dashboard/docs`);
    await page.click(tid("api-reference-link"));
    await page.waitForURL(/\/dashboard\/docs\/api$/);
    // RapiDoc renders inside its shadow root (playwright's locators pierce it): every tag and
    // an operation of the document, with the served document's own summary text.
    const served = await (await fetch(`${g.api}/api/v1/openapi.json`)).json();
    assert.equal(served.openapi, "3.1.0");
    const summary = served.paths["/api/v1/orders"].post.summary;
    assert.equal(summary, "Create an order.");
    await page.getByText(summary, { exact: false }).first().waitFor({ timeout: 15000 });
    for (const tag of ["Orders", "Payments", "Refunds", "Webhooks", "Checkout"]) {
      assert.ok(await page.getByText(tag, { exact: true }).count() > 0, `tag ${tag} shown`);
    }
    const fromDashboard = await (await fetch(`${g.dashboard}/dashboard/openapi.json`)).json();
    assert.deepEqual(fromDashboard, served);
    const csp = (await page.request.get(`${g.dashboard}/dashboard/docs/api`)).headers()["content-security-policy"];
    assert.ok(csp.includes("script-src 'self'") && !csp.includes("unsafe-eval"), csp);
    assert.deepEqual(blocked, []);
    await shot(page, "dashboard-1280-api-reference");
    await page.close();
  });

  test("a second merchant never sees the first merchant's data", async () => {
    const bin = process.env.PAYGATE_BIN || join(root, "target", "debug", "paygate");
    const env = { PATH: process.env.PATH, ...g.dbEnv };
    const created = JSON.parse(execFileSync(bin, ["merchant", "create", "--name", "Second Shop", "--email", "second@example.com", "--password", "second-pass-1", "--json"], { env }).toString());
    const mine = (await api(g, "GET", "/api/v1/payments?limit=100")).body.data;
    assert.ok(mine.length > 0);
    const page = await login("second@example.com", "second-pass-1");
    assert.equal(await page.locator(tid("total-transactions")).textContent(), "0");
    assert.equal(await page.locator(tid("api-key")).textContent(), created.api_key);
    assert.notEqual(await page.locator(tid("api-secret")).textContent(), "secret_test_xyz789");
    for (const path of ["/dashboard", "/dashboard/transactions", "/dashboard/webhooks", "/dashboard/docs", "/dashboard/transactions.csv"]) {
      const text = await page.evaluate(async (p) => (await fetch(p)).text(), path);
      for (const p of mine) assert.ok(!text.includes(p.id) && !text.includes(p.order_id), `${path} shows ${p.id}`);
      assert.ok(!text.includes("key_test_abc123") && !text.includes("whsec_test_abc123"), path);
    }
    const res = await page.goto(`${g.dashboard}/dashboard/payments/${mine[0].id}`);
    assert.equal(res.status(), 404);
    // Rotating the API secret from the overview ("now" chosen on its confirmation page): the
    // new one is shown once and works, the old one stops working at once.
    const call = (secret) => fetch(`${g.api}/api/v1/payments`, { headers: { "X-Api-Key": created.api_key, "X-Api-Secret": secret } });
    assert.equal((await call(created.api_secret)).status, 200);
    await page.goto(`${g.dashboard}/dashboard`);
    await page.click(tid("rotate-secret-button"));
    await page.check(tid("overlap-now"));
    await page.click(tid("rotate-confirm-button"));
    await page.locator(".notice", { hasText: "rotated" }).waitFor();
    const fresh = await page.locator(tid("api-secret")).textContent();
    assert.match(fresh, /^secret_/);
    assert.notEqual(fresh, created.api_secret);
    assert.equal((await call(fresh)).status, 200);
    assert.equal((await call(created.api_secret)).status, 401);
    await page.goto(`${g.dashboard}/dashboard`);
    assert.ok(!(await page.content()).includes(fresh), "shown only once");
    assert.equal((await call(fresh)).status, 200, "and it still works");
    await page.close();
  });

  test("every page fits 390 px without sideways scrolling (screenshots at 1280 and 390)", async () => {
    for (const width of [390, 1280]) {
      const page = await login("test@example.com", "password123", width);
      const someId = (await api(g, "GET", "/api/v1/payments?limit=1")).body.data[0].id;
      for (const [name, path] of [["overview", "/dashboard"], ["transactions", "/dashboard/transactions"], ["payment", `/dashboard/payments/${someId}`], ["webhooks", "/dashboard/webhooks"], ["payment-links", "/dashboard/payment-links"], ["settlements", "/dashboard/settlements"], ["docs", "/dashboard/docs"]]) {
        await page.goto(g.dashboard + path);
        if (width === 390) assert.equal(await scrollsSideways(page), false, `${name} scrolls sideways at 390 px`);
        await shot(page, `dashboard-${width}-${name}`);
      }
      await page.close();
    }
  });

  test("repeated failed logins are slowed down", async () => {
    // The sign-in form's token and the cookie that carries it, as a browser would send them.
    const form = await fetch(`${g.dashboard}/login`);
    const cookie = form.headers.get("set-cookie").split(";")[0];
    const csrf = (await form.text()).match(/name="csrf" value="([^"]+)"/)[1];
    const attempt = () => fetch(`${g.dashboard}/login`, {
      method: "POST",
      headers: { cookie },
      body: new URLSearchParams({ csrf, email: "nobody@example.com", password: "x" }),
    });
    for (let i = 0; i < 3; i++) {
      const r = await attempt();
      assert.equal(r.status, 401);
    }
    const r = await attempt();
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) >= 1);
  });

  test("forms without the session's CSRF token are refused", async () => {
    const page = await login();
    const status = await page.evaluate(async () => (await fetch("/dashboard/webhooks/secret", { method: "POST", body: new URLSearchParams({ csrf: "forged" }) })).status);
    assert.equal(status, 403);
    await page.close();
  });
});

describe("payment links", () => {
  async function waitLink(id, status) {
    for (let i = 0; i < 300; i++) {
      const r = await api(g, "GET", `/api/v1/payment_links/${id}`);
      if (r.body.status === status) return r.body;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    throw new Error(`${id} is not ${status}`);
  }

  test("a link created on the dashboard is paid on its page in two parts (UPI QR, then card) and shows paid", async () => {
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/payment-links`);
    await page.fill(tid("link-amount"), "1000");
    await page.fill(tid("link-description"), "Invoice 42");
    await page.fill(tid("link-reference"), `INV-${Date.now()}`);
    await page.check(tid("link-accept-partial"));
    await page.fill(tid("link-first-min"), "400");
    await page.click(tid("link-create-button"));
    await page.locator(tid("link-created")).waitFor();
    const url = await page.inputValue(tid("created-link-url"));
    const id = url.split("/l/")[1];
    assert.match(id, /^plink_/);
    assert.ok(url.startsWith(g.checkout), url);
    const row = page.locator(`${tid("link-row")}[data-link-id="${id}"]`);
    assert.equal(await row.locator(tid("link-status")).textContent(), "created");
    assert.equal(await row.locator(tid("link-url")).inputValue(), url);

    // The customer pays ₹400.00 first, by UPI QR.
    const customer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await customer.goto(url);
    assert.equal(await customer.locator(tid("link-amount-due")).textContent(), "₹1,000.00");
    assert.equal(await customer.locator(tid("link-description")).textContent(), "Invoice 42");
    await customer.fill(tid("link-amount-input"), "300");
    await customer.click(tid("link-pay-button"));
    assert.match(await customer.locator(tid("link-error")).textContent(), /Pay at least ₹400\.00/);
    await customer.fill(tid("link-amount-input"), "400");
    await customer.click(tid("link-pay-button"));
    await customer.locator(tid("order-amount")).waitFor();
    assert.equal(await customer.locator(tid("order-amount")).textContent(), "₹400.00");
    await customer.click(tid("method-upi"));
    await customer.click(tid("pay-button"));
    await customer.locator(tid("upi-qr")).waitFor({ state: "visible" });
    await customer.click(tid("simulate-approve"));
    await customer.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    // Back on the link's page: what is left.
    await customer.waitForURL(`${url}`, { timeout: 10000 });
    assert.equal(await customer.locator(tid("link-amount-due")).textContent(), "₹600.00");
    assert.match(await customer.locator(tid("link-paid")).textContent(), /₹400\.00 of ₹1,000\.00/);
    assert.equal((await api(g, "GET", `/api/v1/payment_links/${id}`)).body.status, "partially_paid");

    // Then the rest, by card.
    await customer.click(tid("link-pay-button"));
    await customer.locator(tid("order-amount")).waitFor();
    assert.equal(await customer.locator(tid("order-amount")).textContent(), "₹600.00");
    await customer.click(tid("method-card"));
    await customer.fill(tid("card-number-input"), "4111 1111 1111 1111");
    await customer.fill(tid("expiry-input"), "12/30");
    await customer.fill(tid("cvv-input"), "123");
    await customer.fill(tid("cardholder-name-input"), "Asha Rao");
    await customer.click(tid("pay-button"));
    await customer.locator(tid("success-state")).waitFor({ state: "visible", timeout: 15000 });
    await customer.waitForURL(`${url}`, { timeout: 10000 });
    await customer.locator("text=paid in full").waitFor();
    await shot(customer, "link-paid");
    const link = await waitLink(id, "paid");
    assert.equal(link.amount_paid, 100000);
    assert.equal(link.payments.length, 2);
    await customer.close();

    await page.goto(`${g.dashboard}/dashboard/payment-links`);
    assert.equal(await row.locator(tid("link-status")).textContent(), "paid");
    assert.equal(await row.locator(tid("link-amount-paid")).textContent(), "₹1,000.00");
    assert.equal(await row.locator(tid("link-cancel")).count(), 0);
    await page.close();
  });

  test("an expired link cannot be paid, and a link cancelled on the dashboard neither", async () => {
    const expireBy = Math.floor(Date.now() / 1000) + 2;
    const expiring = (await api(g, "POST", "/api/v1/payment_links", { amount: 5000, expire_by: expireBy })).body;
    const cancelled = (await api(g, "POST", "/api/v1/payment_links", { amount: 7000 })).body;
    const customer = await browser.newPage({ viewport: { width: 390, height: 800 } });
    await customer.goto(expiring.short_url);
    assert.equal(await customer.locator(tid("link-amount-due")).textContent(), "₹50.00");
    await waitLink(expiring.id, "expired");
    await customer.reload();
    await customer.locator("text=Link expired").waitFor();
    assert.equal(await customer.locator(tid("link-form")).count(), 0);
    // A form posted from the page opened before the expiry is refused too.
    const late = await fetch(`${g.checkout}/l/${expiring.id}`, { method: "POST", body: new URLSearchParams({ amount: "50" }), redirect: "manual" });
    assert.equal(late.status, 410);

    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/payment-links`);
    const row = page.locator(`${tid("link-row")}[data-link-id="${cancelled.id}"]`);
    await row.locator(tid("link-cancel")).click();
    await page.locator(`text=Payment link ${cancelled.id} cancelled.`).waitFor();
    assert.equal(await row.locator(tid("link-status")).textContent(), "cancelled");
    assert.equal(await page.locator(`${tid("link-row")}[data-link-id="${expiring.id}"] ${tid("link-status")}`).textContent(), "expired");
    await customer.goto(cancelled.short_url);
    await customer.locator("text=Link cancelled").waitFor();
    assert.equal(await customer.locator(tid("link-form")).count(), 0);
    await customer.close();
    await page.close();
  });
});

describe("settlements", () => {
  async function waitSettled(paymentId) {
    for (let i = 0; i < 400; i++) {
      const p = (await api(g, "GET", `/api/v1/payments/${paymentId}`)).body;
      if (p.settlement_id) {
        const s = (await api(g, "GET", `/api/v1/settlements/${p.settlement_id}`)).body;
        if (s.status === "processed") return s;
      }
      await new Promise((ok) => setTimeout(ok, 100));
    }
    throw new Error(`${paymentId} not settled`);
  }

  test("a settlement made in test mode is listed, opens with its transactions, and downloads as CSV", async () => {
    const id = await pay("success@upi", 80000);
    assert.equal((await waitFinal(id)).status, "success");
    const captured = await api(g, "POST", `/api/v1/payments/${id}/capture`, {});
    assert.equal(captured.status, 200, JSON.stringify(captured.body));
    const page = await login();
    // Before it is settled, the overview shows it unsettled (unless the cycle was quicker).
    await page.goto(`${g.dashboard}/dashboard`);
    assert.match(await page.locator(tid("unsettled-balance")).first().textContent(), /^-?₹/);
    const s = await waitSettled(id);
    await page.goto(`${g.dashboard}/dashboard/settlements`);
    const row = page.locator(`${tid("settlement-row")}[data-settlement-id="${s.id}"]`);
    assert.equal(await row.locator(tid("settlement-status")).textContent(), "processed");
    assert.equal(await row.locator(tid("settlement-amount")).textContent(), rupees(s.amount));
    await row.locator(tid("settlement-link")).click();
    await page.waitForURL(`${g.dashboard}/dashboard/settlements/${s.id}`);
    assert.equal(await page.locator(tid("settlement-id")).textContent(), s.id);
    assert.equal(await page.locator(tid("settlement-utr")).textContent(), s.utr);
    assert.equal(await page.locator(tid("settlement-count")).textContent(), String(s.count));
    const lines = page.locator(tid("settlement-transaction"));
    assert.equal(await lines.count(), Math.min(s.count, 200));
    assert.ok((await page.locator(tid("settlement-transactions")).textContent()).includes(id));
    await shot(page, "settlement");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(tid("settlement-csv"))]);
    assert.equal(download.suggestedFilename(), `${s.id}.csv`);
    const { readFileSync } = await import("node:fs");
    const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
    assert.equal(csv[0], "type,id,payment_id,amount,fee,tax,currency,at,settlement_id,settled_at,utr");
    assert.equal(csv.length, s.count + 1);
    const mine = csv.find((l) => l.startsWith(`payment,${id},`));
    assert.ok(mine && mine.endsWith(`,${s.id},${s.processed_at},${s.utr}`), mine);
    await page.close();
  });

  test("the reconciliation upload shows a planted mismatch", async () => {
    const id = await pay("success@upi", 45000);
    assert.equal((await waitFinal(id)).status, "success");
    assert.equal((await api(g, "POST", `/api/v1/payments/${id}/capture`, {})).status, 200);
    await waitSettled(id);
    const bin = process.env.PAYGATE_BIN || join(root, "target", "debug", "paygate");
    const today = new Date().toISOString().slice(0, 10);
    const report = execFileSync(bin, ["processor", "report", "--date", today, "--merchant", "test@example.com"], {
      env: { PATH: process.env.PATH, ...g.dbEnv },
    }).toString();
    const mine = report.split("\n").find((l) => l.startsWith(`${id},`));
    assert.ok(mine, report);
    // The bank says 449.00 instead of 450.00.
    const planted = report.replace(`${id},payment,45000,`, `${id},payment,44900,`);
    const { writeFileSync } = await import("node:fs");
    const file = join(g.dir, "bank-report.csv");
    writeFileSync(file, planted);
    const page = await login();
    await page.goto(`${g.dashboard}/dashboard/settlements`);
    await page.fill(tid("reconcile-date"), today);
    await page.setInputFiles(tid("reconcile-file"), file);
    await page.click(tid("reconcile-button"));
    await page.waitForURL(/\/dashboard\/reconciliations\/recon_/);
    assert.equal(await page.locator(tid("recon-mismatched")).textContent(), "1");
    const line = page.locator(tid("recon-line"), { hasText: id });
    assert.equal(await line.getAttribute("data-result"), "amount_mismatch");
    assert.equal(await line.locator(tid("recon-result")).textContent(), "amount mismatch");
    assert.equal(await line.locator(tid("recon-reason")).textContent(), "the amount differs");
    assert.match(await line.textContent(), /₹450\.00.*₹449\.00/);
    await shot(page, "reconciliation");
    // A file that is not a report is refused on the page, saying why.
    writeFileSync(file, "id,amount\n1,2\n");
    await page.goto(`${g.dashboard}/dashboard/settlements`);
    await page.setInputFiles(tid("reconcile-file"), file);
    await page.click(tid("reconcile-button"));
    assert.match(await page.locator(tid("reconcile-error")).textContent(), /header reference,type,amount,fee,utr/);
    // It is listed on the settlements page.
    assert.ok((await page.locator(tid("reconciliations-table")).textContent()).includes(today));
    await page.close();
  });
});

test("no page, request or API call answered with a server error", () => assertNoServerErrors());
