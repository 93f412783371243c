// The demo merchant page: creates an order on its own server, then opens the checkout widget.
(function () {
  "use strict";
  var button = document.getElementById("buy");
  var status = document.getElementById("status");
  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = "Creating your order…";
    fetch("/demo/order", { method: "POST" })
      .then(function (r) { return r.json(); })
      .then(function (order) {
        status.textContent = "";
        new window.PaymentGateway({
          key: button.dataset.key,
          orderId: order.id,
          onSuccess: function (d) { status.textContent = "Paid! Payment " + d.paymentId; status.dataset.paymentId = d.paymentId; },
          onFailure: function (d) { status.textContent = "Payment failed: " + (d.error || "try again"); },
          onClose: function () { button.disabled = false; if (!status.textContent) status.textContent = "Checkout closed"; }
        }).open();
      })
      .catch(function () { status.textContent = "Could not create an order"; button.disabled = false; });
  });
})();
