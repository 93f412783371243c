// The hosted checkout page: method choice, UPI and card forms with the server's validation
// rules, then a processing state that polls the payment every 2 s, then success or error.
//
// The page opens on the method this browser last paid with (localStorage), else UPI. The
// server renders the buttons disabled ("Loading…"); they are enabled once the handlers below
// are wired. Focus follows the payment: the processing heading, then the result's heading.
(function () {
  "use strict";
  var root = document.querySelector('[data-test-id="checkout-container"]');
  if (!root || !root.dataset.orderId) return;
  var orderId = root.dataset.orderId;
  var embedded = root.dataset.embedded === "true";
  var parentOrigin = root.dataset.parentOrigin || "";
  var $ = function (sel) { return root.querySelector(sel); };
  var method = null, paymentId = null, pollTimer = null, countdownTimer = null;
  // What the customer paid with, as typed: the success page names it (card network and last
  // four digits, or the UPI ID).
  var paidWith = null;
  var LAST_METHOD = "paygate.checkout.method";
  // UPI intent and QR when the merchant has a VPA to be paid at; collect when the customer
  // asks for it ("Enter UPI ID instead") or the merchant has none.
  var payee = root.dataset.payee || "";
  var collect = !payee;

  // --- validation, mirroring the server (SPEC A4) ---
  var VPA = /^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$/;
  function digits(s) { return s.replace(/[\s-]/g, ""); }
  function luhn(d) {
    if (!/^\d{13,19}$/.test(d)) return false;
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var n = +d[d.length - 1 - i];
      if (i % 2 === 1) { n *= 2; if (n > 9) n -= 9; }
      sum += n;
    }
    return sum % 10 === 0;
  }
  function network(d) {
    var two = +d.slice(0, 2);
    if (d[0] === "4") return "visa";
    if (two >= 51 && two <= 55) return "mastercard";
    if (two === 34 || two === 37) return "amex";
    if (two === 60 || two === 65 || (two >= 81 && two <= 89)) return "rupay";
    return d.length >= 2 ? "unknown" : "";
  }
  function parseExpiry(v) {
    var m = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(v);
    if (!m) return null;
    var month = +m[1], year = m[2].length === 2 ? 2000 + +m[2] : +m[2];
    if (month < 1 || month > 12) return null;
    return { month: month, year: year, yy: m[2] };
  }
  function expired(e) {
    var now = new Date();
    var y = now.getUTCFullYear(), mo = now.getUTCMonth() + 1;
    return e.year < y || (e.year === y && e.month < mo);
  }

  function setError(input, errorEl, message) {
    errorEl.textContent = message || "";
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return !message;
  }

  // --- card number grouping as typed ---
  var cardInput = $("#card-number"), netEl = $("#card-network");
  cardInput.addEventListener("input", function () {
    var d = digits(cardInput.value).replace(/\D/g, "").slice(0, 19);
    var groups = network(d) === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var out = [], i = 0;
    for (var g = 0; g < groups.length && i < d.length; g++) { out.push(d.slice(i, i + groups[g])); i += groups[g]; }
    cardInput.value = out.join(" ");
    var n = network(d);
    netEl.textContent = n && n !== "unknown" ? n : "";
  });
  var expiryInput = $("#expiry");
  expiryInput.addEventListener("input", function (e) {
    var d = expiryInput.value.replace(/\D/g, "").slice(0, 4);
    if (e.inputType !== "deleteContentBackward" && d.length >= 2) d = d.slice(0, 2) + "/" + d.slice(2);
    expiryInput.value = d;
  });

  // --- the method last used: localStorage throws in sandboxed frames and when storage is off ---
  function lastMethod() {
    try { return window.localStorage.getItem(LAST_METHOD); } catch (e) { return null; }
  }
  function rememberMethod(m) {
    try { window.localStorage.setItem(LAST_METHOD, m); } catch (e) { /* not remembered */ }
  }

  // --- states ---
  function show(state) {
    $("#pay").hidden = state !== "form";
    $('[data-test-id="processing-state"]').hidden = state !== "processing";
    $('[data-test-id="upi-waiting"]').hidden = state !== "upi";
    if (state !== "upi" && state !== "processing") clearInterval(countdownTimer);
    $('[data-test-id="success-state"]').hidden = state !== "success";
    $('[data-test-id="error-state"]').hidden = state !== "error";
  }
  // Moves focus to a state's heading, so screen readers and keyboards follow the payment.
  function focusOn(el) {
    if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
    el.focus();
  }
  var payButton = $('[data-test-id="pay-button"]');
  function choose(m, quiet) {
    method = m;
    root.querySelectorAll("[data-method]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.method === m));
    });
    var appPanel = $("#upi-app-panel");
    if (appPanel) appPanel.hidden = m !== "upi" || collect;
    $('[data-test-id="upi-form"]').hidden = m !== "upi" || !collect;
    $('[data-test-id="card-form"]').hidden = m !== "card";
    payButton.hidden = false;
    // The pay button submits the form shown (Enter in any of its fields pays); with the UPI
    // app panel there is no form and it pays on its own click.
    var form = m === "card" ? "card-form" : collect ? "upi-form" : null;
    if (form) payButton.setAttribute("form", form); else payButton.removeAttribute("form");
    if (quiet) return;
    var first = m === "upi" ? (collect ? $("#vpa") : payButton) : cardInput;
    first.focus();
  }
  var toggle = $("#upi-collect-toggle");
  if (toggle) toggle.addEventListener("click", function () { collect = true; choose("upi"); });
  root.querySelectorAll("[data-method]").forEach(function (b) {
    b.addEventListener("click", function () { choose(b.dataset.method); });
  });
  function otherMethod() { return method === "card" ? "upi" : "card"; }

  function post(type, data) {
    if (embedded && parentOrigin && window.parent !== window) {
      window.parent.postMessage({ type: type, data: data }, parentOrigin);
    }
  }
  function fail(message, payment) {
    $('[data-test-id="error-message"]').textContent = message;
    $("#other-method-button").textContent = otherMethod() === "card" ? "Pay by card instead" : "Pay by UPI instead";
    show("error");
    post("payment_failed", { paymentId: payment ? payment.id : null, orderId: orderId, error: message });
    focusOn($('[data-test-id="error-heading"]'));
  }

  // "Visa •••• 4242", or the UPI ID; the payment's own fields when it has them.
  var NETWORKS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", rupay: "RuPay" };
  function describe(p) {
    var w = paidWith || {};
    if (p.method === "card" || (!p.method && w.method === "card")) {
      var net = p.card_network || w.network, last4 = p.card_last4 || w.last4;
      var name = NETWORKS[net] || "Card";
      return last4 ? name + " \u2022\u2022\u2022\u2022 " + last4 : name;
    }
    var vpa = p.vpa || w.vpa;
    return vpa ? "UPI (" + vpa + ")" : "UPI";
  }
  function succeed(p) {
    $('[data-test-id="payment-id"]').textContent = p.id;
    $('[data-test-id="success-method"]').textContent = describe(p);
    show("success");
    focusOn($('[data-test-id="success-message"]'));
    post("payment_success", { paymentId: p.id, orderId: orderId, amount: p.amount, currency: p.currency, status: p.status });
    // A payment link's order goes back to the link (then to the merchant's callback).
    var back = root.dataset.returnUrl;
    if (back) {
      var to = new URL(back, window.location.href);
      to.searchParams.set("payment_id", p.id);
      $("#return-link").href = to.href;
      setTimeout(function () { window.location.assign(to.href); }, 1500);
    }
  }
  function poll() {
    fetch("/api/v1/payments/" + encodeURIComponent(paymentId) + "/public", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (p.status === "success") return succeed(p);
        if (p.status === "failed") return fail(p.error_description || "Payment failed", p);
        pollTimer = setTimeout(poll, 2000);
      })
      .catch(function () { pollTimer = setTimeout(poll, 2000); });
  }

  // The QR on wide screens, the upi://pay link on phones: both are on the page, CSS shows one.
  function wide() { return window.matchMedia && window.matchMedia("(min-width: 640px)").matches; }
  function awaitApproval(p) {
    var upi = p.upi || {};
    var qr = $("#upi-qr"), link = $("#upi-intent-link");
    // The QR from this page's own origin (the same path as upi.qr_svg_url).
    qr.src = "/api/v1/payments/" + encodeURIComponent(p.id) + "/upi/qr.svg";
    qr.alt = "QR code to pay " + root.dataset.amount + " to " + root.dataset.merchant + " (" + payee + ") with a UPI app. The link: " + upi.uri;
    link.href = upi.uri;
    countdown(upi.expires_at, $("#upi-countdown"));
    setSimulating(false);
    show("upi");
    focusOn($('[data-test-id="upi-waiting-heading"]'));
  }
  // How long a UPI request stays open when the payment does not say (the server's default).
  var UPI_WINDOW_MS = 5 * 60 * 1000;
  function countdown(expiresAt, out) {
    var until = Date.parse(expiresAt);
    if (isNaN(until)) until = Date.now() + UPI_WINDOW_MS;
    function tick() {
      var left = Math.max(0, Math.round((until - Date.now()) / 1000));
      out.textContent = "Expires in " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    }
    tick();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(tick, 1000);
  }
  // The processing state says what to do while waiting: approve in the UPI app, or stay here.
  function processing() {
    var upi = method === "upi";
    $("#upi-approve-note").hidden = !upi;
    $("#card-waiting-note").hidden = upi;
    $("#processing-countdown").hidden = true;
    clearInterval(countdownTimer);
    show("processing");
    focusOn($("#processing-message"));
  }
  function simulate(answer) {
    if (!paymentId) return;
    var status = $("#upi-status");
    setSimulating(true);
    status.textContent = answer === "approve" ? "Approved: processing…" : "Declined: processing…";
    fetch("/api/v1/test/payments/" + encodeURIComponent(paymentId) + "/upi/" + answer, { method: "POST", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.ok) return;
        return r.json().then(function (j) {
          setSimulating(false);
          status.textContent = (j.error && j.error.description) || "The answer was not recorded";
        });
      })
      .catch(function () { setSimulating(false); status.textContent = "Network error: please try again"; });
  }
  function setSimulating(on) {
    [approveButton, declineButton].forEach(function (b) { if (b) b.disabled = on; });
  }
  var approveButton = $("#simulate-approve"), declineButton = $("#simulate-decline");
  if (approveButton) approveButton.addEventListener("click", function () { simulate("approve"); });
  if (declineButton) declineButton.addEventListener("click", function () { simulate("decline"); });

  function validate() {
    if (method === "upi" && !collect) {
      paidWith = { method: "upi" };
      return { method: "upi", upi: { flow: wide() ? "qr" : "intent" } };
    }
    if (method === "upi") {
      var vpa = $("#vpa");
      var v = vpa.value.trim();
      var ok = setError(vpa, $("#vpa-error"), !v ? "Enter your UPI ID" : VPA.test(v) ? "" : "Enter a valid UPI ID, like name@bank");
      if (ok) paidWith = { method: "upi", vpa: v };
      return ok ? { method: "upi", vpa: v } : null;
    }
    var d = digits(cardInput.value);
    var e = parseExpiry(expiryInput.value);
    var cvv = $("#cvv"), holder = $("#holder");
    var okNumber = setError(cardInput, $("#card-number-error"), luhn(d) ? "" : "Enter a valid card number");
    var okExpiry = setError(expiryInput, $("#expiry-error"), !e ? "Use MM/YY" : expired(e) ? "This card has expired" : "");
    var okCvv = setError(cvv, $("#cvv-error"), /^\d{3,4}$/.test(cvv.value) ? "" : "3 or 4 digits");
    var okHolder = setError(holder, $("#holder-error"), holder.value.trim() ? "" : "Enter the name on the card");
    if (!(okNumber && okExpiry && okCvv && okHolder)) return null;
    paidWith = { method: "card", network: network(d), last4: d.slice(-4) };
    return {
      method: "card",
      card: { number: d, expiry_month: String(e.month).padStart(2, "0"), expiry_year: e.yy, cvv: cvv.value, holder_name: holder.value.trim() }
    };
  }

  function pay(ev) {
    if (ev) ev.preventDefault();
    if (!method) return;
    var body = validate();
    if (!body) {
      var bad = root.querySelector('[aria-invalid="true"]');
      if (bad) bad.focus();
      return;
    }
    body.order_id = orderId;
    rememberMethod(method);
    var button = payButton;
    button.disabled = true;
    processing();
    fetch("/api/v1/payments/public", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body)
    })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        button.disabled = false;
        if (!res.ok) return fail((res.body.error && res.body.error.description) || "Payment could not be started");
        paymentId = res.body.id;
        if (res.body.upi && res.body.upi.uri) awaitApproval(res.body);
        else if (method === "upi") {
          // UPI collect: the request waits in the customer's app, for as long as it is open.
          var out = $("#processing-countdown");
          out.hidden = false;
          countdown(res.body.upi && res.body.upi.expires_at, out);
        }
        poll();
      })
      .catch(function () { button.disabled = false; fail("Network error: please try again"); });
  }
  $('[data-test-id="upi-form"]').addEventListener("submit", pay);
  $('[data-test-id="card-form"]').addEventListener("submit", pay);
  // With a form, the click submits it (and its submit event pays); without one, the click pays.
  payButton.addEventListener("click", function (ev) { if (!payButton.form) pay(ev); });
  function backToForm(m) {
    clearTimeout(pollTimer);
    paymentId = null;
    show("form");
    choose(m);
  }
  $('[data-test-id="retry-button"]').addEventListener("click", function () { backToForm(method); });
  $("#other-method-button").addEventListener("click", function () { backToForm(otherMethod()); });

  choose(lastMethod() === "card" ? "card" : "upi", true);
  show("form");
  // Wired: the server-rendered buttons become usable.
  root.querySelectorAll("[data-loading]").forEach(function (b) {
    b.disabled = false;
    b.removeAttribute("aria-disabled");
    b.removeAttribute("data-loading");
  });
  root.querySelectorAll(".loading-label").forEach(function (l) { l.remove(); });
})();
