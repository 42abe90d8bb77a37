//! A bearer-token server for a registry with `auth: token`, as the
//! distribution token spec describes (tests/registry/token-server.py does
//! the HTTP and the JWT). It shares the registry's test CA: its TLS
//! certificate and its signing certificate are issued by it, and that CA is
//! the registry's `rootcertbundle`, so a client trusting the registry's CA
//! trusts the realm too. Killed and reaped on drop.

use super::super::tls::TestCa;
use super::super::wait_for;
use super::free_port;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The account the token server accepts.
pub const USER: &str = "tokenuser";
pub const PASSWORD: &str = "t0ken-s3cret";
/// The registry's `service` (the tokens' audience) and `issuer`.
pub const SERVICE: &str = "picolet-test-registry";
pub const ISSUER: &str = "picolet-test-issuer";

pub struct TokenServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// The registry dir's test CA, made once: the registry's TLS and the token
/// server's share it.
pub fn registry_ca(registry_dir: &Path) -> TestCa {
    let dir = registry_dir.join("ca");
    if dir.join("ca.pem").exists() {
        TestCa { dir }
    } else {
        TestCa::new(&dir)
    }
}

impl TokenServer {
    /// Start the token server for the registry that will live in
    /// `registry_dir`; wait until it answers.
    pub fn start(registry_dir: &Path) -> TokenServer {
        let ca = registry_ca(registry_dir);
        let (tls_cert, tls_key) =
            ca.issue("token-tls", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
        let (signer_cert, signer_key) = ca.issue(
            "token-signer",
            "/CN=picolet test token signer",
            "keyUsage=digitalSignature",
        );
        let port = free_port();
        let log = registry_dir.join("token-requests.jsonl");
        let server_log = fs::File::create(registry_dir.join("token-server.log")).unwrap();
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/registry/token-server.py"
            ))
            .arg(port.to_string())
            .args([&tls_cert, &tls_key, &signer_cert, &signer_key])
            .args([ISSUER, USER, PASSWORD])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(server_log.try_clone().unwrap())
            .stderr(server_log)
            .spawn()
            .unwrap();
        let ca_pem = ca.cert();
        wait_for("the token server", Duration::from_secs(20), || {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "5",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg("--cacert")
                .arg(&ca_pem)
                .arg(format!("https://127.0.0.1:{port}/token?service={SERVICE}"))
                .output()
                .ok()?;
            (out.stdout == b"200").then_some(())
        });
        TokenServer { child, port, log }
    }

    /// A token for `scope` from the server, as a client gets one: with
    /// the credentials when `creds`, else anonymously.
    pub fn grant(&self, registry: &super::Registry, scope: &str, creds: bool) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "5", "--cacert"])
            .arg(registry.ca());
        if creds {
            cmd.args(["-u", &format!("{USER}:{PASSWORD}")]);
        }
        let out = cmd
            .arg(format!(
                "https://127.0.0.1:{}/token?service={SERVICE}&scope={scope}",
                self.port
            ))
            .output()
            .unwrap();
        let grant: Value = serde_json::from_slice(&out.stdout).unwrap();
        grant["token"].as_str().expect("a token").to_string()
    }

    /// The requests served: path, query, `credentials` ("basic",
    /// "anonymous" or "wrong") and status, one object each.
    pub fn requests(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry config's `auth:` section for a token server on `port`,
/// trusting token signers issued by `ca`.
pub fn registry_auth(port: u16, ca: &Path) -> String {
    format!(
        "auth:\n  token:\n    realm: https://127.0.0.1:{port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        ca.display()
    )
}
