//! Hostile input to a running agent: a YAML alias bomb and a deeply nested
//! document in the manifest directory, a manifest URL that redirects to
//! another host, and the configurations that would send traffic unprotected.
//! Each is built here, at test time.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The agent's peak resident memory (VmHWM), in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// `picolet get pods`' report of manifest `file`, once it names it.
fn manifest_error(agent: &Agent, file: &str, secs: u64) -> String {
    let path = agent.manifests().join(file);
    let prefix = format!("manifest {}: ", path.display());
    wait_for(
        &format!("an error for {file}\n{}", agent.agent_log()),
        Duration::from_secs(secs),
        || {
            let get = agent.cli(&["get", "pods"]);
            String::from_utf8_lossy(&get.stderr)
                .lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        },
    )
}

/// "Billion laughs", shaped to pass yaml_serde's own repetition count:
/// 200 scalars, listed 100 times, that list listed 100 times.
fn alias_bomb() -> String {
    let lols = vec!["lol"; 200].join(",");
    let l1 = vec!["*l0"; 100].join(",");
    let l2 = vec!["*l1"; 100].join(",");
    format!("apiVersion: v1\nkind: Pod\nl0: &l0 [{lols}]\nl1: &l1 [{l1}]\nl2: &l2 [{l2}]\n")
}

#[test]
fn an_alias_bomb_or_deep_nesting_is_an_error_for_its_file_and_the_agent_stays_small() {
    let mut agent = Agent::new("hostile-yaml");
    agent.write_manifest(
        "steady.yaml",
        &pod_yaml("steady", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    agent.start();
    agent.wait_pod("steady", "running", 30, |p| running(p, "c"));
    let before = vm_hwm_kib(agent.pid());

    // 2 KiB that expand to 2 million scalars, well over 100 MB decoded.
    let bomb = alias_bomb();
    assert!(bomb.len() < 2048, "{} bytes", bomb.len());
    agent.write_manifest("bomb.yaml", &bomb);
    let message = manifest_error(&agent, "bomb.yaml", 20);
    assert!(
        message.starts_with("invalid YAML: line ")
            && message
                .ends_with("aliases expand to more than 1048576 bytes (refused as an alias bomb)"),
        "{message}"
    );

    // 4 MiB of '[': libyaml walked every level before yaml_serde's own
    // limit of 128 (about 100 s in a debug build, and 1.4 GB); now the
    // error comes at level 65.
    let start = Instant::now();
    agent.write_manifest("deep.yaml", &"[".repeat(4 << 20));
    let message = manifest_error(&agent, "deep.yaml", 10);
    assert_eq!(
        message,
        "invalid YAML: line 1 column 65: nested deeper than 64 levels"
    );
    let took = start.elapsed();

    // The aliases may add 1 MiB of decoded value; the deep file is read
    // whole (4 MiB). 16 MiB over the peak before is room for both and far
    // below the hundreds of MB the unbounded parser took.
    let after = vm_hwm_kib(agent.pid());
    assert!(
        after < before + 16 * 1024,
        "VmHWM {before} KiB before, {after} KiB after"
    );
    eprintln!("VmHWM {before} KiB before the hostile files, {after} KiB after; deep.yaml reported in {took:?}");
    let steady = agent.pod("steady").unwrap();
    assert!(running(&steady, "c") && restarts(&steady, "c") == 0);
}

/// A plain HTTP server on `ip`:`port` for the URL source: every request's
/// head is recorded; `answer` gives the response to a request path.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(ip: &str, answer: impl Fn(&str) -> String + Send + 'static) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let head = read_head(&conn);
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(head);
                let _ = (&conn).write_all(answer(&path).as_bytes());
            }
        });
        Server { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_head(conn: &TcpStream) -> String {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        head.push_str(&line);
        line.clear();
    }
    head
}

fn respond(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The kubelet (pkg/kubelet/config/http.go) fetches with Go's http.Client:
/// up to 10 redirects, and Go drops only Authorization and Cookie on a
/// redirect to another host, so a custom staticPodURLHeader such as a device
/// token follows it. picolet sends the headers to the staticPodURL's own
/// scheme, host and port only.
#[test]
fn a_redirect_to_another_host_does_not_receive_the_device_token() {
    let manifest = pod_yaml("moved", "Always", 1, "", &[("c", "sleep 3600")]);
    let elsewhere = Server::start("127.0.0.2", move |_| respond("200 OK", "", &manifest));
    let target = format!("http://127.0.0.2:{}/pods.yaml", elsewhere.port);
    let origin = Server::start("127.0.0.1", move |path| match path {
        "/loop" => respond("302 Found", "Location: /loop\r\n", ""),
        _ => respond("302 Found", &format!("Location: {target}\r\n"), ""),
    });
    let mut agent = Agent::new("hostile-redirect");
    agent.extra_config = format!(
        "staticPodURL: http://127.0.0.1:{}/pods.yaml\nstaticPodURLAllowHTTP: true\nstaticPodURLHeader:\n  X-Device-Token: [s3cret]\nhttpCheckFrequency: 1s\n",
        origin.port
    );
    agent.start();
    agent.wait_pod("moved", "running from the redirect", 30, |p| {
        running(p, "c")
    });
    let asked = origin.requests();
    assert!(
        asked[0].contains("x-device-token: s3cret") || asked[0].contains("X-Device-Token: s3cret"),
        "the URL's own host gets the token: {asked:?}"
    );
    let redirected = elsewhere.requests();
    assert!(!redirected.is_empty());
    assert!(
        redirected
            .iter()
            .all(|r| !r.to_lowercase().contains("x-device-token")),
        "{redirected:?}"
    );
    assert!(agent
        .agent_log()
        .contains("plain HTTP (staticPodURLAllowHTTP)"));
    agent.stop("TERM");

    // A redirect loop ends at 10 and is reported; the pods keep running.
    agent.extra_config = format!(
        "staticPodURL: http://127.0.0.1:{}/loop\nstaticPodURLAllowHTTP: true\nhttpCheckFrequency: 1s\n",
        origin.port
    );
    let before = origin.requests().len();
    agent.start();
    wait_for("the loop to be reported", Duration::from_secs(20), || {
        let get = agent.cli(&["get", "pods"]);
        String::from_utf8_lossy(&get.stderr)
            .contains("more than 10 redirects")
            .then_some(())
    });
    let loops = origin.requests().len() - before;
    assert!(
        (11..=22).contains(&loops),
        "{loops} requests for one or two polls"
    );
}

/// `picolet run` with `extra` in its configuration: its exit status and
/// output, or a panic if it still runs after 10 s.
fn run_refused(name: &str, extra: &str) -> (i32, String) {
    let agent = Agent::new(name);
    let config = agent.dir.join("config.yaml");
    fs::write(
        &config,
        format!(
            "staticPodPath: {}\nnodeName: {NODE}\nrootDir: {}\nrunDir: {}\npodLogsDir: {}\ncgroups: \"off\"\n{extra}",
            agent.manifests().display(),
            agent.dir.join("root").display(),
            agent.run_dir().display(),
            agent.log_dir().display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("picolet run started with {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (status.code().unwrap_or(-1), text)
}

#[test]
fn unprotected_traffic_needs_an_explicit_opt_in() {
    let (code, out) = run_refused(
        "hostile-http",
        "staticPodURL: http://127.0.0.1:9/pods.yaml\nstaticPodURLHeader:\n  X-Device-Token: [s3cret]\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: staticPodURL: \"http://127.0.0.1:9/pods.yaml\" is plain HTTP")
            && out.contains("set staticPodURLAllowHTTP: true"),
        "{out}"
    );
    assert!(!out.contains("s3cret"));

    // kubectl accepts insecure-skip-tls-verify; picolet runs what the
    // server says as root, so it wants the agent's own consent too.
    let dir = std::env::temp_dir().join(format!("picolet-insecure-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user: {token: t0ken}\n",
    )
    .unwrap();
    let (code, out) = run_refused(
        "hostile-insecure",
        &format!("kubeconfig: {}\n", kubeconfig.display()),
    );
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: clusters[].cluster.insecure-skip-tls-verify: true: ",
            kubeconfig.display()
        )) && out.contains("set allowInsecureKubeconfig: true"),
        "{out}"
    );
}
