//! The project's own API server (tests/apiserver/apiserver.py) over TLS,
//! with a CA, client certificates and a token made at test time, and the
//! real `kubectl` against it as an administrator.

use super::tls::TestCa;
use super::wait_for;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apiserver/apiserver.py");
pub const TOKEN: &str = "device-token-7f3a9c";

pub struct ApiServer {
    pub dir: PathBuf,
    pub ca: TestCa,
    pub port: u16,
    child: Option<(Child, BufReader<ChildStdout>)>,
}

impl ApiServer {
    pub fn start(base: &Path) -> ApiServer {
        let dir = base.join("apiserver");
        let ca = TestCa::new(&dir);
        ca.server();
        ca.client("admin", "/CN=admin/O=system:masters");
        let mut server = ApiServer {
            dir,
            ca,
            port: 0,
            child: None,
        };
        server.spawn();
        let admin = server.kubeconfig(
            "admin",
            &format!(
                "    client-certificate: {d}/admin.pem\n    client-key: {d}/admin.key\n",
                d = server.dir.display()
            ),
        );
        assert!(admin.exists());
        server
    }

    fn spawn(&mut self) {
        let mut child = Command::new("python3")
            .arg(SERVER)
            .args(["--port", &self.port.to_string()])
            .arg("--cert")
            .arg(self.dir.join("server.pem"))
            .arg("--key")
            .arg(self.dir.join("server.key"))
            .arg("--client-ca")
            .arg(self.ca.cert())
            .args(["--token", TOKEN])
            .arg("--state")
            .arg(self.dir.join("state.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        self.port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the API server said {line:?}"));
        self.child = Some((child, out));
    }

    /// An outage: the server process is gone.
    pub fn stop(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Back on the same port with the same objects, a fresh watch cache.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A kubeconfig `<name>.kubeconfig` (mode 0600) for a user given as
    /// kubeconfig `user:` lines.
    pub fn kubeconfig(&self, name: &str, user: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n{user}contexts:\n- name: c\n  context: {{cluster: test, user: u}}\ncurrent-context: c\n",
            self.port,
            self.ca.cert().display()
        );
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A node's kubeconfig with a client certificate, as kubeadm writes it.
    pub fn node_kubeconfig(&self, node: &str) -> PathBuf {
        let (cert, key) = self
            .ca
            .client(node, &format!("/CN=system:node:{node}/O=system:nodes"));
        self.kubeconfig(
            node,
            &format!(
                "    client-certificate: {}\n    client-key: {}\n",
                cert.display(),
                key.display()
            ),
        )
    }

    /// A kubeconfig that authenticates with a bearer token from a file.
    pub fn token_kubeconfig(&self) -> PathBuf {
        let file = self.dir.join("token");
        fs::write(&file, format!("{TOKEN}\n")).unwrap();
        self.kubeconfig("token", &format!("    tokenFile: {}\n", file.display()))
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("admin.kubeconfig"))
            .args(args)
            .output()
            .expect("kubectl")
    }

    /// kubectl's standard output; the command must succeed.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get <what> -o json`, or None if it does not exist.
    pub fn get(&self, what: &[&str]) -> Option<Value> {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl(&args);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Poll `kubectl get <what>` until `check` accepts it.
    pub fn wait(
        &self,
        what: &[&str],
        describe: &str,
        secs: u64,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(
            &format!("{what:?}: {describe}"),
            Duration::from_secs(secs),
            || self.get(what).filter(|v| check(v)),
        )
    }

    /// `kubectl create -f -` with `yaml`.
    pub fn create(&self, yaml: &str) {
        let file = self.dir.join("create.yaml");
        fs::write(&file, yaml).unwrap();
        self.kubectl_ok(&["create", "-f", &file.display().to_string()]);
    }

    /// A test hook of the server (`compact`, `drop-watches`, `fail?code=500`,
    /// `recover`).
    pub fn hook(&self, name: &str) {
        self.kubectl_ok(&["get", "--raw", &format!("/_test/{name}")]);
    }

    /// Every request the server saw: method, path, query, user, body.
    pub fn requests(&self) -> Vec<Value> {
        let out = self.kubectl_ok(&["get", "--raw", "/_test/requests"]);
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
