"""Times the gateway's reads on a bulk-loaded database (see bench/scale.sh).

Each request is answered `--samples` times over one keep-alive connection after two warm-up
calls; prints one JSON line per request: {"request", "p50_ms", "p99_ms", "status", "bytes"}
(the size of the last answer, to tell a page from an error page). Ids are
those bench/scale.sh loads: row i of each table is `<prefix><i, 16 digits>`, the oldest rows
have the smallest i, so a cursor at i = 20 reads the deepest page of a list.
"""

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse

KEY, SECRET = "key_test_abc123", "secret_test_xyz789"


def rid(prefix, i):
    return f"{prefix}{i:016d}"


def connect(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def timed(conn, path, headers, samples):
    took, status, size = [], None, 0
    for n in range(samples + 2):
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        body = res.read()
        elapsed = (time.perf_counter() - start) * 1000
        status, size = res.status, len(body)
        if status != 200:
            sys.exit(f"{path} answered {status}: {body[:300]!r}")
        if n >= 2:
            took.append(elapsed)
    took.sort()
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return statistics.median(took), p99, status, size


def sign_in(base):
    conn = connect(base)
    body = urllib.parse.urlencode({"email": "test@example.com", "password": "password123"})
    conn.request("POST", "/login", body=body,
                 headers={"content-type": "application/x-www-form-urlencoded"})
    res = conn.getresponse()
    res.read()
    cookie = res.getheader("set-cookie").split(";")[0]
    return conn, {"cookie": cookie}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--payments", type=int, required=True)
    ap.add_argument("--samples", type=int, default=50)
    a = ap.parse_args()
    n = a.payments
    mid = n // 2
    api = [
        ("GET payment", f"/api/v1/payments/{rid('pay_', mid)}"),
        ("GET order", f"/api/v1/orders/{rid('order_', mid)}"),
        ("GET refund", f"/api/v1/refunds/{rid('rfnd_', mid // 10 * 10 + 1)}"),
        ("payments, first page", "/api/v1/payments?limit=10"),
        ("payments, deepest cursor page", f"/api/v1/payments?limit=10&starting_after={rid('pay_', 20)}"),
        ("payments, ending_before mid", f"/api/v1/payments?limit=10&ending_before={rid('pay_', mid)}"),
        ("payments status=failed", "/api/v1/payments?limit=10&status=failed"),
        ("payments status=failed, deepest", f"/api/v1/payments?limit=10&status=failed&starting_after={rid('pay_', 110)}"),
        ("payments method=card", "/api/v1/payments?limit=10&method=card"),
        ("payments from/to (a week, mid-year)", "/api/v1/payments?limit=10&from=2026-06-01T00:00:00Z&to=2026-06-08T00:00:00Z"),
        ("orders, first page", "/api/v1/orders?limit=10"),
        ("orders, deepest cursor page", f"/api/v1/orders?limit=10&starting_after={rid('order_', 20)}"),
        ("refunds, first page", "/api/v1/refunds?limit=10"),
        ("refunds, deepest cursor page", f"/api/v1/refunds?limit=10&starting_after={rid('rfnd_', 201)}"),
        ("events, first page", "/api/v1/events?limit=10"),
        ("events, deepest cursor page", f"/api/v1/events?limit=10&starting_after={rid('evt_', 202)}"),
        ("webhooks, first page", "/api/v1/webhooks?limit=10"),
        ("webhooks, deepest cursor page", f"/api/v1/webhooks?limit=10&starting_after={rid('whd_', 202)}"),
    ]
    conn = connect(a.api)
    auth = {"X-Api-Key": KEY, "X-Api-Secret": SECRET}
    for name, path in api:
        p50, p99, status, size = timed(conn, path, auth, a.samples)
        print(json.dumps({"request": name, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "status": status, "bytes": size}), flush=True)
    dash, cookie = sign_in(a.dashboard)
    pages = [
        ("dashboard overview", "/dashboard"),
        ("dashboard transactions, page 1", "/dashboard/transactions"),
        ("dashboard transactions, deepest page", f"/dashboard/transactions?starting_after={rid('pay_', 30)}"),
        ("dashboard transactions status=failed", "/dashboard/transactions?status=failed"),
        ("dashboard transactions search by order id", f"/dashboard/transactions?q={rid('order_', mid)}"),
        ("dashboard payment", f"/dashboard/payments/{rid('pay_', mid)}"),
        ("dashboard webhooks", "/dashboard/webhooks"),
    ]
    for name, path in pages:
        p50, p99, status, size = timed(dash, path, cookie, a.samples)
        print(json.dumps({"request": name, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "status": status, "bytes": size}), flush=True)


if __name__ == "__main__":
    main()
