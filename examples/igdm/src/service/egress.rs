//! Where the service may send the requests its users configure (outbound webhook subscriptions
//! and automations' `webhook` actions): public internet addresses only, so that a member of an
//! organization cannot make the service call its own network (server-side request forgery:
//! loopback, private ranges, link-local and cloud metadata addresses, ...).
//!
//! Two checks: a URL is refused when it is saved and again before each call if its host is such
//! an address literally (or `localhost`), and the service's HTTP client resolves host names
//! through [`PublicResolver`], which drops every such address (so a public name that resolves
//! to a private address, or changes to one later, is not called either). Operators who deliver
//! to their own network set `outbound.allow_private_targets`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether `ip` is a public internet address (not loopback, private, link-local, shared,
/// documentation, benchmarking, multicast, broadcast, unspecified or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b)) // NAT64 (reaches IPv4 space)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16, cloud metadata
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Checks a URL a user configured: `http` or `https` with a host, and (unless
/// `allow_private`) not a literal non-public address or `localhost`. The error says what is
/// wrong and what to do.
pub fn check_url(url: &str, allow_private: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| format!("`{url}` is not an http(s) URL; give the receiver's full URL"))?;
    if allow_private {
        return Ok(parsed);
    }
    let refused = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => !is_public_v4(v4),
        Some(url::Host::Ipv6(v6)) => !is_public(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => true,
    };
    if refused {
        return Err(format!(
            "`{url}` points at a loopback, private or otherwise non-public address; the service \
             only calls public internet addresses (an operator can allow private ones with \
             outbound.allow_private_targets)"
        ));
    }
    Ok(parsed)
}

/// A DNS resolver for the service's HTTP client that keeps only public addresses; a name with
/// none is an error (the call fails before connecting).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "`{host}` resolves to no public address; the service only calls public \
                     internet addresses"
                )
                .into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;
    use std::net::Ipv6Addr;

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for private in [
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(v6(private)), "{private}");
        }
        for public in ["8.8.8.8", "93.184.216.34", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(is_public(v6("2a00:1450:4001::1")));
    }

    #[test]
    fn urls_to_private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "https://api.localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5/x",
        ] {
            let err = check_url(url, false).unwrap_err();
            assert!(err.contains("non-public"), "{url}: {err}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://hooks.example.com/igdm", false).is_ok());
        assert!(check_url("ftp://example.com/x", true)
            .unwrap_err()
            .contains("not an http(s) URL"));
        assert!(check_url("not a url", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_private_addresses() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match PublicResolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved to a public address"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
    }
}
