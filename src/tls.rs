//! PEM certificates for the HTTPS clients (the manifest URL, the API server).

/// The certificates of a PEM file (CA roots, a client chain); other items
/// are skipped.
pub fn pem_certificates(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}
