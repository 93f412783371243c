//! Who the client is behind a proxy: the connection's peer, unless the peer is one of
//! `TRUSTED_PROXIES` (none by default), in which case `X-Forwarded-For` and
//! `X-Forwarded-Proto` are believed as far as trusted proxies wrote them.
//!
//! Guarantees: with no trusted proxies, headers a client sends change nothing (a client cannot
//! pick its own address for the rate limits and the sign-in throttle). With trusted proxies,
//! the client is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
//! (each proxy appends the address it saw, so entries left of that one are the client's own
//! words). Written here: the rule is a few lines over `ipnet`; the crates that parse
//! forwarding headers pull in web frameworks of their own.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::ConnectInfo,
    http::{HeaderMap, header, request::Parts},
};
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// These networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Parses a comma-separated list of addresses and networks (`10.0.0.0/8, 127.0.0.1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        crate::config::parse_networks("TRUSTED_PROXIES", list).map(Self)
    }

    /// Whether `addr` is a trusted proxy.
    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|n| n.contains(&addr))
    }

    /// The client's address for a request from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(addr) = hop.parse::<IpAddr>() else {
                // Not an address: nothing left of it can be believed.
                return peer;
            };
            let addr = canonical(addr);
            if !self.trusts(addr) {
                return addr;
            }
        }
        peer
    }

    /// Where a request comes from, as the audit log records it: the client's address (when
    /// the connection's peer is known) and the `User-Agent` it sent.
    pub fn origin<'a>(&self, parts: &'a Parts) -> (Option<String>, Option<&'a str>) {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| self.client(peer.ip(), &parts.headers).to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        (address, user_agent)
    }

    /// Whether the request from `peer` reached the first proxy over HTTPS
    /// (`X-Forwarded-Proto: https` from a trusted proxy).
    pub fn forwarded_https(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.trusts(peer)
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

/// An IPv4 address mapped into IPv6 as the IPv4 address it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let none = TrustedProxies::default();
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(none.client(peer, &h), peer);
        assert!(!none.forwarded_https(peer, &h));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        // The client claims 9.9.9.9; the edge proxy saw 198.51.100.4; an inner one 10.2.2.2.
        let h = headers(&[("x-forwarded-for", "9.9.9.9, 198.51.100.4, 10.2.2.2")]);
        assert_eq!(
            t.client(proxy, &h),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(t.client(proxy, &HeaderMap::new()), proxy);
        let garbage = headers(&[("x-forwarded-for", "198.51.100.4, not-an-ip")]);
        assert_eq!(t.client(proxy, &garbage), proxy);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(t.trusts(mapped));
        assert!(t.forwarded_https(proxy, &headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(!t.forwarded_https(proxy, &headers(&[("x-forwarded-proto", "http")])));
    }

    #[test]
    fn a_bad_list_is_refused_by_name() {
        let e = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(e.contains("proxy.local"), "{e}");
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
    }
}
