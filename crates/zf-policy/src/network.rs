//! Network rules: which addresses each role may work from (e.g. client data only from the office
//! or the VPN), and which proxies are trusted to say who the real client is.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::Role;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkPolicy {
    /// Reverse proxies whose `X-Forwarded-For` is believed. Everyone else's is ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Per role, the address ranges it may be used from; a role not listed may be used from
    /// anywhere.
    pub allow: HashMap<Role, Vec<IpNet>>,
}

impl NetworkPolicy {
    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else {
            return peer;
        };
        let mut last = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => last = ip,
                Ok(ip) => return ip,
                // A malformed hop ends what can be believed.
                Err(_) => return last,
            }
        }
        last
    }

    /// Whether `role` may be used from `address`.
    pub fn allows(&self, role: Role, address: IpAddr) -> bool {
        self.allow
            .get(&role)
            .is_none_or(|ranges| ranges.iter().any(|n| n.contains(&address)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> NetworkPolicy {
        NetworkPolicy {
            trusted_proxies: vec!["10.0.0.2/32".parse().unwrap()],
            allow: HashMap::from([(Role::Accountant, vec!["192.168.10.0/24".parse().unwrap()])]),
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let p = policy();
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(p.client_address(stranger, Some("192.168.10.5")), stranger);
        assert_eq!(
            p.client_address(proxy, Some("198.51.100.1, 192.168.10.5")),
            "192.168.10.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            p.client_address(proxy, Some("192.168.10.5, 10.0.0.2")),
            "192.168.10.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.client_address(proxy, Some("garbage")), proxy);
        assert_eq!(p.client_address(proxy, None), proxy);
    }

    #[test]
    fn roles_with_an_allow_list_are_confined_to_it() {
        let p = policy();
        assert!(p.allows(Role::Accountant, "192.168.10.77".parse().unwrap()));
        assert!(!p.allows(Role::Accountant, "192.168.11.77".parse().unwrap()));
        assert!(p.allows(Role::Sales, "203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn it_reads_from_toml_with_role_names() {
        let p: NetworkPolicy = toml_like();
        assert_eq!(p.allow.len(), 1);
    }

    fn toml_like() -> NetworkPolicy {
        serde_json::from_str(
            r#"{"trusted_proxies": ["10.0.0.0/8"], "allow": {"accountant": ["127.0.0.1/32"]}}"#,
        )
        .unwrap()
    }
}
