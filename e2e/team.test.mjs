// Teams in a real browser (Debian's Chromium): an owner invites a developer, who joins and
// signs in; the developer's role keeps them off the team page (a 403 page); a role change and a
// removal take effect on the member's very next page; the audit log shows all of it in order.
import crypto from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNoServerErrors, launch, shot, signIn, startGateway, tid } from "./lib.mjs";

let g, browser;
before(async () => {
  g = await startGateway();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await g?.stop();
});

const login = (email, password) => signIn(browser, g, email, password);

/** The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s) of a base32 secret at `unix` seconds:
 * computed here, not by the gateway. */
function totp(secret, unix = Date.now() / 1000) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, "0");
}

async function signOut(page) {
  await page.click(tid("logout-button"));
  assert.equal(new URL(page.url()).pathname, "/login");
}

describe("team", () => {
  test("an invited developer joins, signs in, and is kept to a developer's pages", async () => {
    const owner = await login("test@example.com", "password123");
    await owner.click('nav >> text="Team"');
    assert.equal(new URL(owner.url()).pathname, "/dashboard/team");
    await owner.fill(tid("invite-email"), "dev@shop.example");
    await owner.selectOption(tid("invite-role"), "developer");
    await owner.click(tid("invite-button"));
    const link = await owner.locator(tid("invitation-link")).inputValue();
    assert.ok(link.startsWith(`${g.dashboard}/invitations/`), link);
    assert.equal(await owner.locator(tid("invitation-row")).count(), 1);
    await shot(owner, "team-1280-invited");

    // The invitee, in a browser of their own.
    const invitee = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await invitee.goto(link);
    await invitee.fill(tid("accept-name"), "Dev Eloper");
    await invitee.fill(tid("accept-password"), "correct horse");
    await invitee.fill(tid("accept-confirm"), "correct horse");
    await invitee.click(tid("accept-button"));
    assert.match(await invitee.locator(tid("invitation-accepted")).textContent(), /joined as Developer/);
    // The link works once.
    const again = await invitee.goto(link);
    assert.equal(again.status(), 410);
    await invitee.locator(tid("invitation-gone")).waitFor();
    await invitee.close();

    const dev = await login("dev@shop.example", "correct horse");
    assert.match(await dev.locator(tid("account-link")).textContent(), /Dev Eloper \(Developer\)/);
    assert.equal(await dev.locator('nav >> text="Team"').count(), 0, "no team link for a developer");
    const refused = await dev.goto(`${g.dashboard}/dashboard/team`);
    assert.equal(refused.status(), 403);
    assert.equal(await dev.locator("h1").textContent(), "Not allowed");
    assert.match(await dev.locator("main").textContent(), /Developer/);
    await shot(dev, "team-1280-forbidden");
    // A developer manages webhooks but not the merchant's UPI id.
    await dev.goto(`${g.dashboard}/dashboard/webhooks`);
    await dev.locator(tid("webhook-config-form")).waitFor();
    await dev.goto(`${g.dashboard}/dashboard`);
    assert.equal(await dev.locator(tid("upi-id-save")).count(), 0);
    assert.equal(await dev.locator(tid("rotate-secret-button")).count(), 1);

    // The owner makes them a viewer: their next page has no webhook forms.
    await owner.goto(`${g.dashboard}/dashboard/team`);
    const row = owner.locator(tid("member-row")).filter({ hasText: "dev@shop.example" });
    await row.locator(tid("member-role-select")).selectOption("viewer");
    await row.locator(tid("member-role-button")).click();
    assert.match(await owner.locator(".notice").textContent(), /Role changed to Viewer/);
    assert.equal(await owner.locator(tid("member-row")).filter({ hasText: "dev@shop.example" }).locator(tid("member-role")).textContent(), "Viewer");
    await dev.goto(`${g.dashboard}/dashboard/webhooks`);
    assert.equal(await dev.locator(tid("webhook-config-form")).count(), 0);
    assert.equal(await dev.locator(tid("webhook-secret")).count(), 0, "no secret for a viewer");

    // The last owner cannot step down.
    const me = owner.locator(tid("member-row")).filter({ hasText: "test@example.com" });
    await me.locator(tid("member-role-select")).selectOption("admin");
    await me.locator(tid("member-role-button")).click();
    assert.match(await owner.locator(".notice").textContent(), /at least one owner/);

    // Removed: the member's next page is the sign-in page, and so is signing in.
    await owner.locator(tid("member-row")).filter({ hasText: "dev@shop.example" }).locator(tid("member-remove-button")).click();
    assert.match(await owner.locator(".notice").textContent(), /User removed/);
    await dev.goto(`${g.dashboard}/dashboard`);
    assert.equal(new URL(dev.url()).pathname, "/login");
    await dev.fill(tid("email-input"), "dev@shop.example");
    await dev.fill(tid("password-input"), "correct horse");
    await dev.click(tid("login-button"));
    await dev.locator(tid("login-error")).waitFor();
    await dev.close();
    await owner.close();
    assertNoServerErrors();
  });

  test("two-factor sign-in: set up, then password and code; recovery codes once; required for the team", async () => {
    const owner = await login("test@example.com", "password123");
    await owner.goto(`${g.dashboard}/dashboard/team`);
    await owner.fill(tid("invite-email"), "admin@shop.example");
    await owner.selectOption(tid("invite-role"), "admin");
    await owner.click(tid("invite-button"));
    const link = await owner.locator(tid("invitation-link")).inputValue();
    const join = await browser.newPage();
    await join.goto(link);
    await join.fill(tid("accept-name"), "Ad Min");
    await join.fill(tid("accept-password"), "correct horse");
    await join.fill(tid("accept-confirm"), "correct horse");
    await join.click(tid("accept-button"));
    await join.close();

    // The admin sets it up with a code computed here.
    const admin = await login("admin@shop.example", "correct horse");
    await admin.click(tid("account-link"));
    await admin.click(tid("two-factor-link"));
    await admin.locator(tid("totp-qr")).waitFor();
    const secret = (await admin.locator(tid("totp-secret")).textContent()).trim();
    await admin.fill(tid("enable-code"), "000000");
    await admin.click(tid("enable-button"));
    await admin.locator(tid("enable-error")).waitFor();
    assert.equal((await admin.locator(tid("totp-secret")).textContent()).trim(), secret, "the same secret");
    await admin.fill(tid("enable-code"), totp(secret));
    await admin.click(tid("enable-button"));
    const codes = (await admin.locator(tid("recovery-code")).allTextContents()).map((c) => c.trim());
    assert.equal(codes.length, 10);
    await shot(admin, "team-1280-recovery-codes");
    await admin.goto(`${g.dashboard}/dashboard`);
    await signOut(admin);

    // Password, then the code (the next step's: the one that turned it on was used).
    await admin.fill(tid("email-input"), "admin@shop.example");
    await admin.fill(tid("password-input"), "correct horse");
    await admin.click(tid("login-button"));
    assert.equal(new URL(admin.url()).pathname, "/login/code");
    await admin.goto(`${g.dashboard}/dashboard`);
    assert.equal(new URL(admin.url()).pathname, "/login", "the password alone opens nothing");
    await admin.fill(tid("email-input"), "admin@shop.example");
    await admin.fill(tid("password-input"), "correct horse");
    await admin.click(tid("login-button"));
    await admin.fill(tid("code-input"), totp(secret, Date.now() / 1000 + 30));
    await admin.click(tid("code-button"));
    await admin.locator(tid("dashboard")).waitFor();
    await signOut(admin);

    // A recovery code works once.
    for (const expected of ["/dashboard", "/login/code"]) {
      await admin.fill(tid("email-input"), "admin@shop.example");
      await admin.fill(tid("password-input"), "correct horse");
      await admin.click(tid("login-button"));
      await admin.fill(tid("code-input"), codes[0]);
      await admin.click(tid("code-button"));
      assert.equal(new URL(admin.url()).pathname, expected);
      if (expected === "/dashboard") await signOut(admin);
    }
    assert.match(await admin.locator(tid("code-error")).textContent(), /not right, or was used already/);
    await admin.close();

    // The owner requires it: a member without it is sent to set it up, first thing.
    await owner.goto(`${g.dashboard}/dashboard/team`);
    await owner.click(tid("require-two-factor-button"));
    // The owner has none yet either: sent to set it up, with the notice.
    assert.equal(new URL(owner.url()).pathname, "/dashboard/account/2fa");
    assert.match(await owner.locator(".notice").first().textContent(), /now required/);
    await owner.goto(`${g.dashboard}/dashboard/transactions`);
    assert.equal(new URL(owner.url()).pathname, "/dashboard/account/2fa");
    await owner.locator(tid("two-factor-required")).waitFor();
    const ownerSecret = (await owner.locator(tid("totp-secret")).textContent()).trim();
    await owner.fill(tid("enable-code"), totp(ownerSecret));
    await owner.click(tid("enable-button"));
    await owner.locator(tid("recovery-codes")).waitFor();
    await owner.goto(`${g.dashboard}/dashboard/team`);
    assert.match(await owner.locator(tid("two-factor-policy")).textContent(), /Required of everyone/);
    const twoFactor = await owner.locator(tid("member-two-factor")).allTextContents();
    assert.ok(twoFactor.every((t) => t === "on"), twoFactor.join());
    // Stop requiring it again: the other tests sign in with the password alone.
    await owner.click(tid("require-two-factor-button"));
    await owner.goto(`${g.dashboard}/dashboard/account/2fa`);
    await owner.fill(tid("disable-code"), totp(ownerSecret, Date.now() / 1000 + 30));
    await owner.click(tid("disable-button"));
    assert.match(await owner.locator(".notice").textContent(), /off/);
    await owner.close();
    assertNoServerErrors();
  });

  test("a user sees their sessions and ends one elsewhere", async () => {
    const here = await login("test@example.com", "password123");
    const there = await login("test@example.com", "password123");
    await here.click(tid("account-link"));
    assert.equal(await here.locator(tid("account-role")).textContent(), "Owner");
    const rows = here.locator(tid("session-row"));
    assert.ok((await rows.count()) >= 2);
    // The newest other session is the other browser's.
    const other = rows.filter({ hasNotText: "(this session)" }).first();
    await other.locator(tid("session-end-button")).click();
    assert.match(await here.locator(".notice").textContent(), /Session ended/);
    await there.goto(`${g.dashboard}/dashboard`);
    assert.equal(new URL(there.url()).pathname, "/login");
    await here.goto(`${g.dashboard}/dashboard`);
    assert.equal(new URL(here.url()).pathname, "/dashboard");
    await here.close();
    await there.close();
    assertNoServerErrors();
  });

  test("the audit log shows these actions in order, filters them and exports them", async () => {
    const owner = await login("test@example.com", "password123");
    await owner.click('nav >> text="Audit log"');
    assert.equal(new URL(owner.url()).pathname, "/dashboard/audit-log");
    await owner.locator(tid("audit-table")).waitFor();
    const entries = async () => {
      const rows = owner.locator(tid("audit-row"));
      const out = [];
      for (let i = 0; i < (await rows.count()); i++) {
        const row = rows.nth(i);
        out.push({
          action: (await row.locator(tid("audit-action")).textContent()).trim(),
          actor: (await row.locator(tid("audit-actor")).textContent()).trim(),
          outcome: (await row.locator(tid("audit-outcome")).textContent()).trim(),
        });
      }
      return out.reverse(); // oldest first
    };
    const seen = await entries();
    // What the tests above did, in the order they did it (other entries may fall between).
    const expected = [
      ["invitation.create", "test@example.com"],
      ["user.join", "dev@shop.example"],
      ["user.sign_in", "dev@shop.example"],
      ["user.role_change", "test@example.com"],
      ["user.remove", "test@example.com"],
      ["invitation.create", "test@example.com"],
      ["user.join", "admin@shop.example"],
      ["user.sign_in", "admin@shop.example"],
      ["user.two_factor_enable", "admin@shop.example"],
      ["user.sign_out", "admin@shop.example"],
      ["user.sign_in", "admin@shop.example"],
      ["settings.two_factor_required", "test@example.com"],
      ["user.two_factor_enable", "test@example.com"],
      ["settings.two_factor_optional", "test@example.com"],
      ["user.two_factor_disable", "test@example.com"],
      ["session.end", "test@example.com"],
    ];
    let at = 0;
    for (const [action, actor] of expected) {
      while (at < seen.length && !(seen[at].action === action && seen[at].actor === actor)) at++;
      assert.ok(at < seen.length, `${action} by ${actor} in order, in ${JSON.stringify(seen)}`);
      at++;
    }
    // The recovery code used a second time: a failed sign-in.
    assert.ok(seen.some((e) => e.action === "user.sign_in" && e.actor === "admin@shop.example" && e.outcome === "failure"));
    await shot(owner, "audit-log-1280");

    // Filtered by action.
    await owner.fill(tid("filter-action"), "user.sign_in");
    await owner.click(tid("filter-button"));
    const signIns = await entries();
    assert.ok(signIns.length >= 5, JSON.stringify(signIns));
    assert.ok(signIns.every((e) => e.action === "user.sign_in"));
    // The export of the filtered log.
    const href = await owner.locator(tid("export-csv")).getAttribute("href");
    const csv = await owner.request.get(`${g.dashboard}${href}`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()["content-type"], /text\/csv/);
    const lines = (await csv.text()).trim().split("\n");
    assert.ok(lines[0].startsWith("id,created_at,actor_type"), lines[0]);
    assert.equal(lines.length, 1 + signIns.length);
    assert.ok(lines.slice(1).every((l) => l.includes(",user.sign_in,")));
    await owner.close();
    assertNoServerErrors();
  });
});
