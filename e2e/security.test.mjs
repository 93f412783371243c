// The dashboard's sign-in as an attacker and a merchant meet it in a real browser (Debian's
// Chromium): the form's own CSRF token, the throttle that slows one address without locking
// the merchant out from another, the `Secure` cookie behind an HTTPS proxy, and pages that
// are never stored. The gateway trusts 127.0.0.1 as its reverse proxy, so each browser
// context stands for a client of its own through `X-Forwarded-For`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNoServerErrors, launch, serverErrors, shot, startGateway, tid } from "./lib.mjs";

let g, browser;
before(async () => {
  g = await startGateway({ TRUSTED_PROXIES: "127.0.0.1" });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await g?.stop();
});

/** A browser context for a client behind the proxy at `address` (and HTTPS when asked). */
async function client(address, https = false) {
  const headers = { "X-Forwarded-For": address };
  if (https) headers["X-Forwarded-Proto"] = "https";
  const context = await browser.newContext({ extraHTTPHeaders: headers, viewport: { width: 1280, height: 900 } });
  context.on("response", (r) => {
    if (r.status() >= 500) serverErrors.push(`${r.request().method()} ${r.url()} ${r.status()}`);
  });
  return context;
}

async function signIn(context, password) {
  const page = await context.newPage();
  await page.goto(`${g.dashboard}/login`);
  await page.fill(tid("email-input"), "test@example.com");
  await page.fill(tid("password-input"), password);
  await Promise.all([page.waitForLoadState("load"), page.click(tid("login-button"))]);
  return page;
}

describe("sign-in security", () => {
  test("the sign-in form carries its own token; another site's form is refused", async () => {
    const context = await client("203.0.113.10");
    const page = await context.newPage();
    await page.goto(`${g.dashboard}/login`);
    const token = await page.locator('form[data-test-id="login-form"] input[name="csrf"]').getAttribute("value");
    assert.ok(token && token.length >= 32, token);
    // A page of another origin posting the right password to the dashboard.
    const evil = await context.newPage();
    await evil.setContent(`<form method="post" action="${g.dashboard}/login">
      <input name="email" value="test@example.com"><input name="password" value="password123">
      <button id="go">go</button></form>`);
    const [response] = await Promise.all([evil.waitForNavigation(), evil.click("#go")]);
    assert.equal(response.status(), 403);
    assert.match(await evil.locator(tid("login-error")).textContent(), /expired/);
    assert.equal(new URL(evil.url()).pathname, "/login");
    await shot(evil, "security-1280-forged-sign-in");
    await context.close();
  });

  test("three wrong passwords slow that address down, not the merchant elsewhere", async () => {
    const attacker = await client("203.0.113.20");
    for (let i = 0; i < 3; i++) {
      const page = await signIn(attacker, "guess-" + i);
      assert.match(await page.locator(tid("login-error")).textContent(), /Invalid email or password/);
      await page.close();
    }
    const blocked = await signIn(attacker, "password123");
    assert.equal(new URL(blocked.url()).pathname, "/login");
    assert.match(await blocked.locator(tid("login-error")).textContent(), /Too many failed attempts/);
    await shot(blocked, "security-1280-throttled");
    await attacker.close();
    const merchant = await client("198.51.100.7");
    const page = await signIn(merchant, "password123");
    assert.equal(new URL(page.url()).pathname, "/dashboard");
    await page.locator(tid("dashboard")).waitFor();
    await merchant.close();
  });

  test("behind an HTTPS proxy the session cookie is Secure, and pages are not stored", async () => {
    const plain = await client("198.51.100.8");
    const page = await signIn(plain, "password123");
    const insecure = (await plain.cookies()).find((c) => c.name === "paygate_session");
    assert.ok(insecure && !insecure.secure, JSON.stringify(insecure));
    const response = await page.goto(`${g.dashboard}/dashboard`);
    assert.equal(response.headers()["cache-control"], "no-store");
    await plain.close();
    const https = await client("198.51.100.9", true);
    const secured = await signIn(https, "password123");
    assert.equal(new URL(secured.url()).pathname, "/dashboard");
    const session = (await https.cookies()).find((c) => c.name === "paygate_session");
    assert.ok(session && session.secure && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
    await https.close();
  });

  test("no server errors", () => assertNoServerErrors());
});
