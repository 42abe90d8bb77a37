//! A real registry for the pull tests (issue 15 point 6): Debian's
//! `docker-registry` (the CNCF distribution registry) started on a free
//! loopback port with its storage in the test's directory, either with TLS
//! (a CA and a server certificate made by openssl now) and htpasswd auth
//! (bcrypt, by apache2-utils' `htpasswd -B`), or plain HTTP without auth to
//! act as a mirror. Images are pushed with the real `skopeo`. Killed and
//! reaped on drop; every wait has a deadline.
//!
//! The helpers around it: [`proxy`] (a TCP proxy that cuts the first blob
//! response so the next request must resume with `Range`), [`images`]
//! (what a layout holds, a multi-arch index, archives for import, distinct
//! images), [`token`] (a bearer-token server for `auth: token`).

pub mod images;
pub mod proxy;
pub mod token;

use super::{run, wait_for};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The account of the password-protected registry.
pub const USER: &str = "puller";
pub const PASSWORD: &str = "pull-s3cret";

/// The repository and tag every test pushes busybox to.
pub const BUSYBOX: &str = "library/busybox:1.36";

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a registry authenticates clients.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Plain HTTP, anyone may pull and push: the mirror.
    None,
    /// TLS and htpasswd (basic auth with bcrypt).
    Htpasswd,
    /// TLS and bearer tokens from [`token::TokenServer`] at this port.
    Token(u16),
}

/// One `docker-registry serve` process.
pub struct Registry {
    child: Option<Child>,
    /// Config, storage, certificates and the log live here.
    pub dir: PathBuf,
    pub port: u16,
    pub auth: Auth,
}

/// `cp -a from to`.
pub fn copy_dir(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

impl Registry {
    /// TLS and htpasswd with [`USER`]/[`PASSWORD`], under `base/<name>`.
    pub fn secure(base: &Path, name: &str) -> Registry {
        Registry::start(base, name, Auth::Htpasswd)
    }

    /// TLS and bearer tokens from a [`token::TokenServer`] started now
    /// (returned too: it must outlive the registry's use).
    pub fn with_token_server(base: &Path, name: &str) -> (Registry, token::TokenServer) {
        let tokens = token::TokenServer::start(&base.join(name));
        let registry = Registry::start(base, name, Auth::Token(tokens.port));
        (registry, tokens)
    }

    /// Plain HTTP, no auth, under `base/<name>`: the mirror.
    pub fn plain(base: &Path, name: &str) -> Registry {
        Registry::start(base, name, Auth::None)
    }

    /// A registry of `auth` under `base/<name>`, answering `/v2/`.
    pub fn start(base: &Path, name: &str, auth: Auth) -> Registry {
        let dir = base.join(name);
        fs::create_dir_all(dir.join("storage")).unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        if auth != Auth::None {
            let ca = token::registry_ca(&dir);
            let (cert, key) = ca.issue(
                "server",
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            );
            // skopeo's --dest-cert-dir wants the CA as `*.crt`.
            fs::create_dir_all(dir.join("certs.d")).unwrap();
            fs::copy(ca.cert(), dir.join("certs.d/ca.crt")).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        match auth {
            Auth::None => {}
            Auth::Htpasswd => {
                let line = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                fs::write(dir.join("htpasswd"), &line.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: picolet-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                ));
            }
            Auth::Token(token_port) => {
                config.push_str(&token::registry_auth(token_port, &dir.join("ca/ca.pem")))
            }
        }
        fs::write(dir.join("config.yml"), config).unwrap();
        let mut registry = Registry {
            child: None,
            dir,
            port,
            auth,
        };
        registry.resume();
        registry
    }

    /// Start the process again (after [`Registry::stop`]) on the same port
    /// and storage, and wait until `/v2/` answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        self.child = Some(child);
        wait_for(
            &format!("the registry on {} to answer /v2/", self.port),
            Duration::from_secs(20),
            || {
                // 200 without auth, 401 with: either way it serves.
                let code = self.curl_code("/v2/", false);
                (code == "200" || code == "401").then_some(())
            },
        );
    }

    /// Kill the process and reap it; the storage stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `127.0.0.1:PORT`, the host part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<repo_tag>`.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    pub fn url(&self) -> String {
        let scheme = if self.auth == Auth::None {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.host())
    }

    /// The CA that signed the server's certificate (TLS registries).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca/ca.pem")
    }

    /// curl `path` (with the credentials when `creds`); the HTTP status.
    pub fn curl_code(&self, path: &str, creds: bool) -> String {
        let out = self.curl(path, creds, &["-o", "/dev/null", "-w", "%{http_code}"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// curl `path` with `extra` arguments, trusting the CA.
    pub fn curl(&self, path: &str, creds: bool, extra: &[&str]) -> Output {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "5"]).args(extra);
        if self.auth != Auth::None {
            cmd.arg("--cacert").arg(self.ca());
        }
        if creds && self.auth == Auth::Htpasswd {
            cmd.args(["-u", &format!("{USER}:{PASSWORD}")]);
        }
        cmd.arg(format!("{}{path}", self.url()))
            .output()
            .expect("curl")
    }

    /// `/v2/_catalog` as the registry lists it (with credentials).
    pub fn catalog(&self) -> String {
        String::from_utf8_lossy(&self.curl("/v2/_catalog", true, &[]).stdout).into_owned()
    }

    /// skopeo's destination options for this registry.
    fn dest_args(&self) -> Vec<String> {
        match self.auth {
            Auth::None => vec!["--dest-tls-verify=false".into()],
            Auth::Htpasswd => vec![
                format!("--dest-cert-dir={}", self.dir.join("certs.d").display()),
                format!("--dest-creds={USER}:{PASSWORD}"),
            ],
            Auth::Token(_) => vec![
                format!("--dest-cert-dir={}", self.dir.join("certs.d").display()),
                format!("--dest-creds={}:{}", token::USER, token::PASSWORD),
            ],
        }
    }

    /// Push `tag` of the OCI layout `layout` as `<repo_tag>` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str) {
        self.skopeo_push(layout, tag, repo_tag, false);
    }

    /// Push the index `tag` of `layout` with every image it lists
    /// (`skopeo copy --all`).
    pub fn push_all(&self, layout: &Path, tag: &str, repo_tag: &str) {
        self.skopeo_push(layout, tag, repo_tag, true);
    }

    fn skopeo_push(&self, layout: &Path, tag: &str, repo_tag: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        // The host's policy.json may be absent or strict; the test trusts its own images.
        cmd.args(["--insecure-policy", "copy", "--quiet"]);
        if all {
            cmd.arg("--all");
        }
        cmd.args(self.dest_args())
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}", self.image(repo_tag)));
        run(&mut cmd);
    }

    /// Where the registry's filesystem driver keeps the blob `digest`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Flip one byte in the middle of the stored blob `digest`, keeping
    /// its size: the registry serves it as is, its digest no longer holds.
    pub fn tamper_blob(&self, digest: &str) {
        let path = self.blob_path(digest);
        let mut data = fs::read(&path).unwrap();
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
        fs::write(&path, data).unwrap();
    }

    /// The access log lines (combined format) of requests to `/v2/<repo>/`.
    pub fn requests_for(&self, repo: &str) -> Vec<String> {
        let log = fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
        let needle = format!(" /v2/{repo}/");
        log.lines()
            .filter(|l| !l.starts_with("time=") && l.contains(&needle))
            .map(String::from)
            .collect()
    }

    /// A `configs:` entry of registries.yaml for this registry: `creds`
    /// as the auth, and its CA when `trust`.
    pub fn config_entry(&self, creds: Option<(&str, &str)>, trust: bool) -> String {
        let mut entry = format!("  \"{}\":\n", self.host());
        if let Some((user, password)) = creds {
            entry.push_str(&format!(
                "    auth:\n      username: {user}\n      password: {password}\n"
            ));
        }
        if trust {
            entry.push_str(&format!(
                "    tls:\n      ca_file: {}\n",
                self.ca().display()
            ));
        }
        entry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Write a k3s registries.yaml to `path`: `mirrors` as (registry host,
/// endpoints), `configs` as entries from [`Registry::config_entry`].
pub fn registries_yaml(path: &Path, mirrors: &[(String, Vec<String>)], configs: &[String]) {
    let mut yaml = String::from("mirrors:\n");
    if mirrors.is_empty() {
        yaml = String::from("mirrors: {}\n");
    }
    for (host, endpoints) in mirrors {
        yaml.push_str(&format!("  \"{host}\":\n    endpoint:\n"));
        for e in endpoints {
            yaml.push_str(&format!("    - \"{e}\"\n"));
        }
    }
    if configs.is_empty() {
        yaml.push_str("configs: {}\n");
    } else {
        yaml.push_str("configs:\n");
        for c in configs {
            yaml.push_str(c);
        }
    }
    fs::write(path, yaml).unwrap();
}
