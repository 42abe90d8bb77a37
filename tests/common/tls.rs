//! Certificates made at test time by openssl: a CA, and certificates it
//! signs for servers (with an IP SAN) and for clients (clientAuth).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCa {
    pub dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// `dir/ca.pem` and `dir/ca.key`.
    pub fn new(dir: &Path) -> TestCa {
        fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=picolet test CA",
            ],
        );
        TestCa {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `<name>.pem` and `<name>.key` for `subject`, with the X.509 v3
    /// extension line `extension`; returns (certificate, key).
    pub fn issue(&self, name: &str, subject: &str, extension: &str) -> (PathBuf, PathBuf) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl(
            &self.dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                subject,
            ],
        );
        fs::write(self.dir.join(&ext), format!("{extension}\n")).unwrap();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (self.dir.join(pem), self.dir.join(key))
    }

    /// A server certificate for 127.0.0.1.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        self.issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1")
    }

    /// A client certificate for `subject` (`/CN=user/O=group`).
    pub fn client(&self, name: &str, subject: &str) -> (PathBuf, PathBuf) {
        self.issue(name, subject, "extendedKeyUsage=clientAuth")
    }
}
