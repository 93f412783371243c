// paygate checkout SDK: `new PaymentGateway({key, orderId, onSuccess, onFailure, onClose}).open()`
// shows the hosted checkout in a modal iframe. Works as a plain <script> and as a module import
// (both define window.PaymentGateway). Messages from the iframe are accepted only from the
// checkout's origin and from that iframe; the iframe posts only to this page's origin.
(function (global) {
  "use strict";
  var script = typeof document !== "undefined" && document.currentScript;
  var CHECKOUT_ORIGIN = script && script.src ? new URL(script.src).origin : "__PUBLIC_CHECKOUT_URL__";

  function PaymentGateway(options) {
    if (!(this instanceof PaymentGateway)) return new PaymentGateway(options);
    if (!options || !options.key || !options.orderId) {
      throw new Error("PaymentGateway: `key` and `orderId` are required");
    }
    this.options = options;
    this.modal = null;
    this.iframe = null;
    this._onMessage = this._onMessage.bind(this);
    this._onKey = this._onKey.bind(this);
  }

  PaymentGateway.prototype.open = function () {
    if (this.modal) return this;
    var o = this.options;
    var modal = document.createElement("div");
    modal.id = "payment-gateway-modal";
    modal.setAttribute("data-test-id", "payment-modal");
    modal.setAttribute("role", "dialog");
    modal.setAttribute("aria-modal", "true");
    modal.setAttribute("aria-label", "Checkout");
    modal.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(15,20,30,.6);display:flex;align-items:center;justify-content:center;padding:12px;box-sizing:border-box";
    var box = document.createElement("div");
    box.style.cssText = "position:relative;width:100%;max-width:460px;height:min(680px,100%);background:#fff;border-radius:12px;overflow:hidden;box-shadow:0 10px 40px rgba(0,0,0,.3)";
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("data-test-id", "close-modal-button");
    close.setAttribute("aria-label", "Close checkout");
    close.textContent = "\u00d7";
    close.style.cssText = "position:absolute;top:6px;right:8px;z-index:1;width:36px;height:36px;border:0;border-radius:18px;background:#eef0f4;font-size:22px;line-height:36px;cursor:pointer";
    close.addEventListener("click", this.close.bind(this));
    var iframe = document.createElement("iframe");
    iframe.setAttribute("data-test-id", "payment-iframe");
    iframe.title = "Payment";
    iframe.style.cssText = "width:100%;height:100%;border:0";
    iframe.src = CHECKOUT_ORIGIN + "/checkout?order_id=" + encodeURIComponent(o.orderId) +
      "&embedded=true&key=" + encodeURIComponent(o.key) + "&origin=" + encodeURIComponent(window.location.origin);
    box.appendChild(close);
    box.appendChild(iframe);
    modal.appendChild(box);
    document.body.appendChild(modal);
    this.modal = modal;
    this.iframe = iframe;
    window.addEventListener("message", this._onMessage);
    document.addEventListener("keydown", this._onKey);
    close.focus();
    return this;
  };

  PaymentGateway.prototype.close = function () {
    if (!this.modal) return;
    window.removeEventListener("message", this._onMessage);
    document.removeEventListener("keydown", this._onKey);
    this.modal.remove();
    this.modal = null;
    this.iframe = null;
    if (typeof this.options.onClose === "function") this.options.onClose();
  };

  PaymentGateway.prototype._onKey = function (e) {
    if (e.key === "Escape") this.close();
  };

  PaymentGateway.prototype._onMessage = function (e) {
    if (e.origin !== CHECKOUT_ORIGIN) return;
    if (!this.iframe || e.source !== this.iframe.contentWindow) return;
    var msg = e.data || {};
    var o = this.options;
    if (msg.type === "payment_success") {
      if (typeof o.onSuccess === "function") o.onSuccess(msg.data || {});
      this.close();
    } else if (msg.type === "payment_failed") {
      if (typeof o.onFailure === "function") o.onFailure(msg.data || {});
    } else if (msg.type === "close_modal") {
      this.close();
    }
  };

  global.PaymentGateway = PaymentGateway;
})(typeof window !== "undefined" ? window : this);
