//! A small HTTP CONNECT proxy on loopback for the proxy tests: it records every CONNECT target,
//! refuses the first `refuse` of them with 403 (a proxy ACL), and otherwise tunnels bytes both
//! ways (502 when it cannot reach the target).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

pub struct ConnectProxy {
    pub addr: SocketAddr,
    /// CONNECT targets, as asked.
    targets: Arc<Mutex<Vec<String>>>,
    /// CONNECTs still to refuse.
    pub refuse: Arc<AtomicUsize>,
    _stop: DropGuard,
}

impl ConnectProxy {
    pub async fn start(refuse: usize) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(AtomicUsize::new(refuse));
        let stop = CancellationToken::new();
        let (t, r, s) = (targets.clone(), refuse.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    c = listener.accept() => c.unwrap(),
                    () = s.cancelled() => return,
                };
                tokio::spawn(serve(tcp, t.clone(), r.clone()));
            }
        });
        ConnectProxy {
            addr,
            targets,
            refuse,
            _stop: stop.drop_guard(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().clone()
    }
}

async fn serve(mut client: TcpStream, targets: Arc<Mutex<Vec<String>>>, refuse: Arc<AtomicUsize>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return;
    };
    targets.lock().push(target.to_owned());
    if refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
