-- Where the hosted checkout sends the customer after paying an order (issue 35): the order's
-- `callback_url`, given when the merchant creates it ("Return to <merchant>" on the success
-- page, with the payment id added).
ALTER TABLE orders ADD COLUMN callback_url TEXT;
