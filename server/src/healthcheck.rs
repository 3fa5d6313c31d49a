//! `labboard healthcheck`: asks a running server's `/healthz` and exits 0 when it answers 200.
//! For container health checks, where the runtime image has no HTTP client of its own.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

/// How long the check waits to connect, and then for the answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `labboard healthcheck`: its flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "labboard healthcheck",
    about = "Exit 0 if the server on this machine answers /healthz, 1 otherwise"
)]
pub struct HealthcheckArgs {
    /// The server's listen address (as given to the server); an unspecified address
    /// (`0.0.0.0`, `::`) means this machine's loopback.
    #[arg(long, env = "LABBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
}

/// Runs `labboard healthcheck` with `args` (the word `healthcheck` first).
pub fn main<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = <HealthcheckArgs as clap::Parser>::try_parse_from(
        std::iter::once(std::ffi::OsString::from("labboard healthcheck"))
            .chain(args.into_iter().skip(1).map(Into::into)),
    )
    .unwrap_or_else(|err| err.exit());
    check(args.listen)?;
    println!("ok");
    Ok(())
}

/// Sends `GET /healthz` to the server listening on `listen`; `Ok` on a 200.
pub fn check(listen: SocketAddr) -> anyhow::Result<()> {
    let addr = SocketAddr::new(reachable(listen.ip()), listen.port());
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("asking {addr}"))?;
    let mut head = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut head)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!("{addr}/healthz answered {:?}", status_line.trim());
    }
    Ok(())
}

fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_checked_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            reachable("::".parse().unwrap()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(reachable(lan), lan);
    }

    #[test]
    fn a_closed_port_or_a_non_200_answer_fails() {
        // A port nothing listens on: bind one, then close it.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(check(free).is_err());

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for answer in ["HTTP/1.1 503 Service Unavailable", "HTTP/1.1 200 OK"] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    conn.read_exact(&mut byte).unwrap();
                    request.push(byte[0]);
                }
                assert!(request.starts_with(b"GET /healthz HTTP/1.1\r\n"));
                let reply = format!("{answer}\r\ncontent-length: 2\r\n\r\nok");
                conn.write_all(reply.as_bytes()).unwrap();
            }
        });
        let err = check(addr).unwrap_err().to_string();
        assert!(err.contains("503"), "{err}");
        check(addr).unwrap();
        server.join().unwrap();
    }
}
