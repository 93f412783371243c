//! The webhook HTTP client: 5 s timeout, no redirects, no proxies, response bodies read only
//! up to [`BODY_CAP`], and destinations on special networks refused.
//!
//! The destination check runs on the literal address of the URL and, for host names, inside
//! the client's DNS resolver, so the connection only ever goes to an address that passed the
//! check (a name cannot resolve to a public address for the check and a private one for the
//! connection). Loopback is allowed by `WEBHOOK_ALLOW_LOOPBACK` (on by default for local
//! development), private ranges by `WEBHOOK_ALLOW_PRIVATE`; link-local (cloud metadata),
//! unspecified, multicast, broadcast, documentation and reserved ranges are always refused.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::{CONTENT_TYPE, RETRY_AFTER},
};

/// Request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of a response body that are read (and stored).
pub const BODY_CAP: usize = 4096;

/// Which networks webhook destinations may be on.
#[derive(Clone, Copy, Debug)]
pub struct NetPolicy {
    pub allow_loopback: bool,
    pub allow_private: bool,
}

impl NetPolicy {
    /// `Err(reason)` when `ip` is on a network this policy refuses.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let kind = match ip {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        };
        match kind {
            None => Ok(()),
            Some("loopback") if self.allow_loopback => Ok(()),
            Some("private") if self.allow_private => Ok(()),
            Some(kind) => Err(format!("destination refused: {ip} is on a {kind} network")),
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        Some("documentation")
    } else if a == 198 && (b == 18 || b == 19) || (a, b, c) == (192, 0, 0) {
        Some("reserved")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let first = seg[0];
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if seg[..6] == [0; 6] {
        // IPv4-compatible (`::a.b.c.d`, deprecated): no real destination uses it.
        Some("reserved")
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix reaches the IPv4 address it embeds.
        classify_v4(embedded(seg[6], seg[7]))
    } else if first == 0x64 && seg[1] == 0xff9b && seg[2] == 1 {
        // NAT64 for local use (64:ff9b:1::/48).
        Some("private")
    } else if first == 0x2002 {
        // 6to4 reaches the IPv4 address in its next 32 bits.
        classify_v4(embedded(seg[1], seg[2]))
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        // Unique local, and the deprecated site-local.
        Some("private")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast()
        || first == 0x2001 && seg[1] == 0x0db8
        || first == 0x2001 && seg[1] == 0
        || first == 0x0100 && seg[1..4] == [0; 3]
    {
        // Documentation, Teredo (an obfuscated IPv4 behind it), discard.
        Some("reserved")
    } else {
        None
    }
}

/// Resolves names with the system resolver and keeps only addresses the policy allows.
struct CheckedResolver(NetPolicy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refused = Some(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.unwrap_or_else(|| format!("{host} does not resolve"));
                return Err(reason.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status, or `None` when no answer came (refused, unreachable, timed out).
    pub code: Option<u16>,
    /// The first [`BODY_CAP`] bytes of the answer, or what went wrong.
    pub body: String,
    pub retry_after: Option<Duration>,
    pub duration: Duration,
}

/// The client.
pub struct WebhookClient {
    http: reqwest::Client,
    policy: NetPolicy,
}

impl WebhookClient {
    pub fn new(policy: NetPolicy) -> anyhow::Result<Self> {
        // One TLS crypto provider for the process (reqwest is built without its own).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy)))
            .user_agent(concat!("paygate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, policy })
    }

    /// Checks a webhook URL as it is configured: http(s), a host, and, if the host is an IP
    /// address, one the policy allows.
    pub fn check_url(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url)
            .map_err(|_| "webhook_url must be an absolute http(s) URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("webhook_url must use http or https".into());
        }
        match parsed.host() {
            None => Err("webhook_url must have a host".into()),
            Some(url::Host::Ipv4(ip)) => self.policy.check(IpAddr::V4(ip)).map(|()| parsed.clone()),
            Some(url::Host::Ipv6(ip)) => self.policy.check(IpAddr::V6(ip)).map(|()| parsed.clone()),
            Some(url::Host::Domain(_)) => Ok(parsed.clone()),
        }
    }

    /// POSTs `body` with `headers`; never fails, the outcome says what happened.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Response {
        let started = Instant::now();
        let failed = |reason: String, started: Instant| Response {
            code: None,
            body: reason,
            retry_after: None,
            duration: started.elapsed(),
        };
        let url = match self.check_url(url) {
            Ok(u) => u,
            Err(reason) => return failed(reason, started),
        };
        let mut request = self.http.post(url).header(CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = match request.body(body.to_owned()).send().await {
            Ok(r) => r,
            Err(e) => return failed(describe(&e), started),
        };
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut read = Vec::new();
        while read.len() < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                _ => break,
            }
        }
        read.truncate(BODY_CAP);
        Response {
            code: Some(code),
            body: storable(&read),
            retry_after,
            duration: started.elapsed(),
        }
    }
}

/// A receiver's answer as text every database stores: invalid UTF-8 and U+0000 (which
/// PostgreSQL's text refuses) become U+FFFD.
pub fn storable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

/// A short reason for a failed request, with the resolver's refusal when that was the cause.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.starts_with("destination refused") {
            return text;
        }
        source = s.source();
    }
    if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: NetPolicy = NetPolicy {
        allow_loopback: false,
        allow_private: false,
    };

    #[test]
    fn special_networks_are_refused_and_public_ones_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "192.0.2.1",
            "::",
            // NAT64, IPv4-compatible, site-local, 6to4 and Teredo reaching private IPv4.
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::a00:1",
            "::10.0.0.1",
            "::8.8.8.8",
            "fec0::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(STRICT.check(ip).is_err(), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(
                STRICT.check(ip.parse().unwrap()).is_ok(),
                "{ip} should be allowed"
            );
        }
    }

    #[test]
    fn configuration_opens_loopback_and_private_but_never_link_local() {
        let open = NetPolicy {
            allow_loopback: true,
            allow_private: true,
        };
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(open.check("10.0.0.5".parse().unwrap()).is_ok());
        assert!(open.check("169.254.169.254".parse().unwrap()).is_err());
        let msg = STRICT
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(msg.contains("link-local"), "{msg}");
    }

    #[test]
    fn answers_are_stored_without_nul_or_invalid_utf8() {
        assert_eq!(storable(b"ok\0\xffdone"), "ok\u{FFFD}\u{FFFD}done");
    }

    #[tokio::test]
    async fn urls_are_checked_at_configuration_when_literal() {
        let c = WebhookClient::new(STRICT).unwrap();
        assert!(c.check_url("https://example.com/hooks").is_ok());
        assert!(c.check_url("http://169.254.169.254/latest").is_err());
        assert!(c.check_url("http://[::1]:4000/").is_err());
        assert!(c.check_url("ftp://example.com/").is_err());
        assert!(c.check_url("not a url").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_refused_networks_are_not_contacted() {
        let c = WebhookClient::new(STRICT).unwrap();
        let r = c.post("http://localhost:9/", &[], "{}").await;
        assert_eq!(r.code, None);
        assert!(r.body.contains("destination refused"), "{}", r.body);
    }
}
