//! Facts about this host that pods and the API see.

/// The address this host uses to reach `target` (a URL or `host:port`):
/// what a server there sees, and a pod's `status.hostIP`. A UDP socket's
/// route lookup, no packet sent.
pub fn local_ip_towards(target: &str) -> Option<String> {
    let authority = target.split("://").last()?.split('/').next()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .ok()?
        .next()?;
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(addr).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// This host's address for pods without an API server: the source address
/// of the default route (TEST-NET-1 as the target), else loopback.
pub fn default_ip() -> String {
    local_ip_towards("192.0.2.1:9").unwrap_or_else(|| "127.0.0.1".into())
}
