//! https targets: a TLS front (self-signed certificate made here) before the mock; trusted
//! through `--ca-cert`, refused without it, accepted with `--insecure`.

use crate::harness::*;
use gsai_load::client::TlsOptions;
use std::io::Write;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// Terminates TLS on 127.0.0.1:0 and relays each connection to `backend`.
async fn tls_front(
    backend: std::net::SocketAddr,
) -> (u16, tempfile::NamedTempFile, tokio::task::JoinHandle<()>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut pem = tempfile::NamedTempFile::new().unwrap();
    pem.write_all(cert.cert.pem().as_bytes()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake: nothing to relay.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (port, pem, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_insecure_and_refused() {
    let mock = start_mock(fast_config()).await;
    let (port, pem, front) = tls_front(mock.addr()).await;
    let https = format!("https://localhost:{port}");

    let mut p = plan(&mock, 2, 6);
    p.host = https.clone();
    p.tls = TlsOptions {
        ca_cert: Some(pem.path().to_path_buf()),
        insecure: false,
    };
    let r = run(p).await;
    assert_eq!(
        (total(&r).requests, total(&r).failures),
        (6, 0),
        "{:?}",
        r.stats.failures
    );

    let mut p = plan(&mock, 2, 4);
    p.host = https.clone();
    let r = run(p).await;
    assert_eq!(
        failures_of(&r, gsai_load::metrics::FailureKind::Tls),
        4,
        "{:?}",
        r.stats.failures
    );

    let mut p = plan(&mock, 2, 4);
    p.host = https;
    p.tls.insecure = true;
    let r = run(p).await;
    assert_eq!(
        (total(&r).requests, total(&r).failures),
        (4, 0),
        "{:?}",
        r.stats.failures
    );
    assert_eq!(mock.counters().ok, 10);
    front.abort();
    mock.shutdown().await;
}
