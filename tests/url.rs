//! The manifest URL source against a real nginx on loopback: ETag and 304,
//! a required device-token header, HTTPS with a CA made at test time by
//! openssl, a broken document, and a reboot with the server gone.

mod common;

use common::tls::TestCa;
use common::*;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An nginx serving `dir` on a free loopback port over HTTP and HTTPS; it
/// answers 403 without the device token.
struct Nginx {
    child: Child,
    dir: PathBuf,
    http: u16,
    https: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    fn start(base: &Path) -> Nginx {
        let dir = base.join("nginx");
        let www = dir.join("www");
        fs::create_dir_all(&www).unwrap();
        // A CA and a server certificate for 127.0.0.1, made now.
        let ca = TestCa::new(&dir);
        ca.server();
        let (http, https) = (free_port(), free_port());
        let conf = format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  map $http_x_device_token $denied {{ default 1; \"s3cret\" 0; }}\n  server {{\n    listen 127.0.0.1:{http};\n    listen 127.0.0.1:{https} ssl;\n    ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n    root {d}/www;\n    location / {{ if ($denied) {{ return 403; }} }}\n  }}\n}}\n",
            d = dir.display()
        );
        fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("nginx to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", http))
                .ok()
                .map(drop)
        });
        Nginx {
            child,
            dir,
            http,
            https,
        }
    }

    fn serve(&self, yaml: &str) {
        let tmp = self.dir.join("www/.pods.tmp");
        fs::write(&tmp, yaml).unwrap();
        fs::rename(tmp, self.dir.join("www/pods.yaml")).unwrap();
    }

    fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn list(pods: &[(&str, &str)]) -> String {
    let mut y = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for (name, script) in pods {
        y.push_str(&format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata: {{name: {name}}}\n  spec:\n    terminationGracePeriodSeconds: 1\n    containers:\n    - name: c\n      image: busybox:1.36\n      command: [sh, -c, {}]\n",
            serde_json::to_string(script).unwrap()
        ));
    }
    y
}

#[test]
fn pods_follow_the_manifest_url_and_survive_the_server_going_away() {
    let mut agent = Agent::new("url");
    let nginx = Nginx::start(&agent.dir);
    // "twice" is in the manifest directory too: the directory comes first.
    nginx.serve(&list(&[("fleet-a", "sleep 3600"), ("twice", "sleep 3600")]));
    agent.write_manifest(
        "twice.yaml",
        &pod_yaml("twice", "Always", 1, "", &[("file", "sleep 3600")]),
    );
    agent.extra_config = format!(
        "staticPodURL: https://127.0.0.1:{}/pods.yaml\nstaticPodURLCAFile: {}\nstaticPodURLHeader:\n  X-Device-Token: [s3cret]\nhttpCheckFrequency: 1s\n",
        nginx.https,
        nginx.dir.join("ca.pem").display()
    );
    agent.start();
    let a = agent.wait_pod("fleet-a", "running", 30, |p| running(p, "c"));
    assert_eq!(
        a["metadata"]["annotations"]["kubernetes.io/config.source"],
        "http"
    );
    let twice = agent.wait_pod("twice", "running", 30, |p| running(p, "file"));
    assert_eq!(
        twice["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    assert!(agent
        .agent_log()
        .contains("is defined by more than one source; the later one is ignored"));
    // Unchanged documents come back as 304: ETag and If-None-Match work.
    wait_for("a 304 in nginx's log", Duration::from_secs(10), || {
        nginx.access_log().contains("\" 304 ").then_some(())
    });

    // A new document replaces the pods.
    nginx.serve(&list(&[
        ("fleet-a", "sleep 3600"),
        ("fleet-b", "sleep 3600"),
    ]));
    agent.wait_pod("fleet-b", "running", 30, |p| running(p, "c"));

    // A PodList in JSON works the same.
    let pod = |name: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}]}})
    };
    let pods: Vec<_> = ["fleet-a", "fleet-b", "fleet-c"].map(pod).into();
    nginx.serve(
        &serde_json::json!({"apiVersion": "v1", "kind": "PodList", "items": pods}).to_string(),
    );
    agent.wait_pod("fleet-c", "running from JSON", 30, |p| running(p, "c"));

    // A broken document keeps the last good version and says why.
    nginx.serve(&list(&[("fleet-a", "sleep 3600")]).replace("image: busybox:1.36", "image: ''"));
    let broken = agent.wait_pod("fleet-a", "the error shown", 20, |p| {
        p["status"]["message"].is_string()
    });
    assert!(broken["status"]["message"]
        .as_str()
        .unwrap()
        .contains("image: required"));
    assert!(agent.pod("fleet-b").is_some_and(|p| running(&p, "c")));

    // The server goes away, the device reboots: the same pods run at once.
    drop(nginx);
    agent.simulate_reboot();
    agent.start();
    agent.wait_pod("fleet-a", "running again offline", 30, |p| running(p, "c"));
    agent.wait_pod("fleet-b", "running again offline", 30, |p| running(p, "c"));
    assert!(agent
        .agent_log()
        .contains("running the last good document until the server answers"));
}

#[test]
fn the_device_token_is_required_and_tls_is_verified() {
    let mut agent = Agent::new("url-auth");
    let nginx = Nginx::start(&agent.dir);
    nginx.serve(&list(&[("secret", "sleep 3600")]));
    // No token over plain HTTP: 403, nothing runs, the error is reported.
    agent.extra_config = format!(
        "staticPodURL: http://127.0.0.1:{}/pods.yaml\nstaticPodURLAllowHTTP: true\nhttpCheckFrequency: 1s\n",
        nginx.http
    );
    agent.start();
    wait_for("the 403 to be reported", Duration::from_secs(20), || {
        let get = agent.cli(&["get", "pods"]);
        String::from_utf8_lossy(&get.stderr)
            .contains("HTTP 403")
            .then_some(())
    });
    assert!(agent.pod("secret").is_none());
    agent.stop("TERM");
    // HTTPS without the CA: the certificate is not trusted, nothing runs.
    agent.extra_config = format!(
        "staticPodURL: https://127.0.0.1:{}/pods.yaml\nstaticPodURLHeader:\n  X-Device-Token: [s3cret]\nhttpCheckFrequency: 1s\n",
        nginx.https
    );
    agent.start();
    wait_for(
        "the TLS failure to be reported",
        Duration::from_secs(20),
        || {
            let get = agent.cli(&["get", "pods"]);
            let err = String::from_utf8_lossy(&get.stderr).to_lowercase();
            (err.contains("certificate") || err.contains("issuer")).then_some(())
        },
    );
    assert!(agent.pod("secret").is_none());
    assert!(
        !agent.agent_log().contains("s3cret"),
        "the token is never logged"
    );
}
