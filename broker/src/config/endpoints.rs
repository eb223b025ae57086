//! The address-shaped values: listeners (`NAME://host:port`), controller quorum voters
//! (`id@host:port`), bootstrap servers (`host:port`), the listener security-protocol map
//! (`NAME:PROTOCOL`) and process roles.

use std::collections::BTreeMap;
use std::fmt;

pub use rafka_security::SecurityProtocol;

/// One listener or advertised listener: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The listener name, upper-cased as Kafka's `ListenerName.normalised` does.
    pub listener_name: String,
    /// The host; empty means "all interfaces" for a listener (and the machine's hostname when
    /// advertised). IPv6 addresses are stored without brackets.
    pub host: String,
    /// The port; 0 asks the OS for one (the bound port is known only after binding).
    pub port: u16,
    /// From `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

impl Endpoint {
    /// `host:port`, with brackets around an IPv6 host — what to bind to or connect to
    /// (an empty host binds all interfaces: `0.0.0.0`).
    pub fn socket_addr_string(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        host_port(host, self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.listener_name,
            host_port(&self.host, self.port)
        )
    }
}

/// `host:port`, bracketing IPv6 hosts.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A `host:port` pair (bootstrap servers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or address (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&host_port(&self.host, self.port))
    }
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Voter {
    /// The controller's node id.
    pub id: i32,
    /// Its controller listener host.
    pub host: String,
    /// Its controller listener port.
    pub port: u16,
}

impl fmt::Display for Voter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, host_port(&self.host, self.port))
    }
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessRoles {
    /// Serves clients: the `broker` role.
    pub broker: bool,
    /// Is a voter of the metadata quorum: the `controller` role.
    pub controller: bool,
}

impl ProcessRoles {
    /// Both roles (a combined node).
    pub fn is_combined(self) -> bool {
        self.broker && self.controller
    }
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            (false, true) => f.write_str("controller"),
            (false, false) => Ok(()),
        }
    }
}

/// Parse `host:port` (host may be empty, or `[ipv6]`). The error is the reason.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {s}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("missing ':port' in {s}"))?;
        (host, port)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("missing ':port' in {s}"))?
    };
    if !host.is_empty()
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%'))
    {
        return Err(format!("invalid host {host:?} in {s}"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port {port:?} in {s} (expected 0-65535)"))?;
    Ok((host.to_string(), port))
}

/// Parse one `NAME://host:port` without resolving its protocol. The error is the reason.
pub fn parse_listener(s: &str) -> Result<(String, String, u16), String> {
    let s = s.trim();
    let (name, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s} is not of the form NAME://host:port"))?;
    if name.is_empty() {
        return Err(format!("{s} has no listener name"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("invalid listener name {name:?} in {s}"));
    }
    let (host, port) = parse_host_port(rest)?;
    Ok((name.to_ascii_uppercase(), host, port))
}

/// Parses `http.listeners`: `http://host:port` items (an empty host binds every address).
pub fn parse_http_listeners(value: &str) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for item in super::def::parse_list(value) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let rest = item
            .strip_prefix("http://")
            .or_else(|| item.strip_prefix("HTTP://"))
            .ok_or_else(|| format!("{item} is not of the form http://host:port"))?;
        out.push(parse_host_port(rest.trim_end_matches('/'))?);
    }
    Ok(out)
}

/// Parse a listener list with the given security protocol map. `require_distinct_ports` as
/// Kafka's (for `listeners`; not for `advertised.listeners`).
pub fn parse_listeners(
    value: &str,
    protocols: &BTreeMap<String, SecurityProtocol>,
    require_distinct_ports: bool,
) -> Result<Vec<Endpoint>, String> {
    let mut out: Vec<Endpoint> = Vec::new();
    for item in super::def::parse_list(value) {
        if item.is_empty() {
            continue;
        }
        let (name, host, port) = parse_listener(&item)?;
        if out.iter().any(|e| e.listener_name == name) {
            return Err(format!(
                "each listener must have a different name; {name} appears twice"
            ));
        }
        if require_distinct_ports && port != 0 {
            let wildcard = |h: &str| h.is_empty() || h == "0.0.0.0" || h == "::";
            if let Some(other) = out.iter().find(|e| {
                e.port == port && (e.host == host || wildcard(&e.host) || wildcard(&host))
            }) {
                return Err(format!(
                    "each listener must have a different port; {} and {} both use {port}",
                    other.listener_name, name
                ));
            }
        }
        let security_protocol = *protocols.get(&name).ok_or_else(|| {
            format!("no security protocol defined for listener {name} in listener.security.protocol.map")
        })?;
        out.push(Endpoint {
            listener_name: name,
            host,
            port,
            security_protocol,
        });
    }
    Ok(out)
}

/// Parse `listener.security.protocol.map` (`NAME:PROTOCOL,...`; names upper-cased).
pub fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut map = BTreeMap::new();
    for item in super::def::parse_list(value) {
        if item.is_empty() {
            continue;
        }
        let (name, proto) = item
            .split_once(':')
            .ok_or_else(|| format!("{item} is not of the form NAME:PROTOCOL"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(format!("{item} has no listener name"));
        }
        let protocol = SecurityProtocol::parse(proto).ok_or_else(|| {
            format!(
                "unknown security protocol {:?} for listener {name}",
                proto.trim()
            )
        })?;
        if map.insert(name.clone(), protocol).is_some() {
            return Err(format!("listener {name} is mapped twice"));
        }
    }
    Ok(map)
}

/// Parse `controller.quorum.voters` (`id@host:port,...`).
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, String> {
    let mut voters: Vec<Voter> = Vec::new();
    for item in super::def::parse_list(value) {
        if item.is_empty() {
            continue;
        }
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| format!("{item} is not of the form id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| format!("invalid voter id {:?} in {item}", id.trim()))?;
        if id < 0 {
            return Err(format!("invalid voter id {id} in {item} (must be >= 0)"));
        }
        let (host, port) = parse_host_port(addr)?;
        if host.is_empty() {
            return Err(format!("voter {item} has no host"));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(format!("voter id {id} appears twice"));
        }
        voters.push(Voter { id, host, port });
    }
    Ok(voters)
}

/// Parse `controller.quorum.bootstrap.servers` (`host:port,...`).
pub fn parse_bootstrap_servers(value: &str) -> Result<Vec<HostPort>, String> {
    let mut out = Vec::new();
    for item in super::def::parse_list(value) {
        if item.is_empty() {
            continue;
        }
        let (host, port) = parse_host_port(&item)?;
        if host.is_empty() {
            return Err(format!("bootstrap server {item} has no host"));
        }
        out.push(HostPort { host, port });
    }
    Ok(out)
}

/// Parse `process.roles`.
pub fn parse_roles(value: &str) -> Result<ProcessRoles, String> {
    let mut roles = ProcessRoles::default();
    for role in super::def::parse_list(value) {
        let slot = match role.as_str() {
            "broker" => &mut roles.broker,
            "controller" => &mut roles.controller,
            other => {
                return Err(format!(
                    "unknown role {other:?} (each role must be broker or controller)"
                ))
            }
        };
        if *slot {
            return Err(format!("duplicate role {role}"));
        }
        *slot = true;
    }
    Ok(roles)
}

/// The machine's host name (what Kafka advertises for a listener with an empty host), or
/// `localhost` when it cannot be had.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that many
    // and we stop at the first NUL (or the end) when reading.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end]) {
            let name = name.trim();
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "localhost".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plaintext_map() -> BTreeMap<String, SecurityProtocol> {
        parse_protocol_map("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL").expect("map")
    }

    #[test]
    fn config_listeners_parse() {
        let l = parse_listeners(
            "PLAINTEXT://:9092, controller://[::1]:9093,SSL://host.example:0",
            &plaintext_map(),
            true,
        )
        .expect("parses");
        assert_eq!(l[0].listener_name, "PLAINTEXT");
        assert_eq!(l[0].host, "");
        assert_eq!(l[0].socket_addr_string(), "0.0.0.0:9092");
        assert_eq!(l[1].listener_name, "CONTROLLER");
        assert_eq!(l[1].host, "::1");
        assert_eq!(l[1].to_string(), "CONTROLLER://[::1]:9093");
        assert_eq!(l[2].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(l[2].port, 0);
    }

    #[test]
    fn config_listeners_errors() {
        let m = plaintext_map();
        assert!(
            parse_listeners("PLAINTEXT://:9092,PLAINTEXT://:9093", &m, true)
                .expect_err("an error")
                .contains("different name")
        );
        assert!(
            parse_listeners("PLAINTEXT://:9092,CONTROLLER://localhost:9092", &m, true)
                .expect_err("an error")
                .contains("different port")
        );
        assert!(
            parse_listeners("PLAINTEXT://:9092,CONTROLLER://localhost:9092", &m, false).is_ok()
        );
        assert!(parse_listeners("EXTERNAL://:9094", &m, true)
            .expect_err("an error")
            .contains("no security protocol"));
        assert!(parse_listeners("localhost:9092", &m, true).is_err());
        assert!(parse_listeners("PLAINTEXT://:99999", &m, true).is_err());
        assert!(parse_listeners("PLAINTEXT://host", &m, true).is_err());
    }

    #[test]
    fn config_voters_and_bootstrap() {
        let v = parse_voters("1@localhost:9093, 2@[::1]:9094,3@h3:9095").expect("voters");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].host, "::1");
        assert_eq!(v[2].to_string(), "3@h3:9095");
        assert!(parse_voters("1@a:1,1@b:2")
            .expect_err("an error")
            .contains("twice"));
        assert!(parse_voters("x@a:1").is_err());
        assert!(parse_voters("1@:9093").is_err());
        assert!(parse_voters("1-a:9093").is_err());
        let b = parse_bootstrap_servers("a:1,b:2").expect("bootstrap");
        assert_eq!(b[1].to_string(), "b:2");
    }

    #[test]
    fn config_roles_and_protocol_map() {
        assert!(parse_roles("broker,controller")
            .expect("roles")
            .is_combined());
        assert!(parse_roles("broker,broker").is_err());
        assert!(parse_roles("Broker").is_err());
        assert_eq!(parse_roles("").expect("roles"), ProcessRoles::default());
        assert!(parse_protocol_map("A:FOO").is_err());
        assert!(parse_protocol_map("A").is_err());
        assert_eq!(
            parse_protocol_map("a:sasl_ssl").expect("map")["A"],
            SecurityProtocol::SaslSsl
        );
        assert!(!local_hostname().is_empty());
    }
}
