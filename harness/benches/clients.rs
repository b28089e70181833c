//! Is the harness ever the bottleneck? The workload's clients and the streaming
//! recorder, exactly as a run uses them (`chaosbank::clients`, `chaosbank::recorder`), against
//! a service that answers at once: a fixture that speaks the service contract's transfer
//! API (`POST /transfers` → `200 {"status": "accepted"}`, `docs/sut.md` §3) over
//! kept-alive HTTP/1.1 on loopback, reached through the contract's own client
//! (`workloads::service::http::HttpClient`). Every op is written to a history file.
//!
//! Run: `cargo bench -p chaosbank-harness --bench clients`. Criterion reports transfers/s
//! (each iteration is one transfer, invoked and completed in the history).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chaosbank::clients::{Client, Clients};
use chaosbank::generator::{Generator, WorkloadConfig};
use chaosbank::recorder::Recorder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use workloads::bank::{BankId, Transfer};
use workloads::service::http::HttpClient;
use workloads::system::Outcome;

/// Concurrent clients, as many as a run's default.
const CONCURRENCY: usize = 8;

/// A service that accepts every transfer at once; returns its address.
async fn instant_service() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let mut conn = BufReader::new(sock);
                let mut line = String::new();
                loop {
                    // The request line and headers, then a Content-Length body.
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        match conn.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if conn.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"status\":\"accepted\"}\n";
                    if conn.get_mut().write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The contract's client, as a run's clients call a service (reads are not drawn here).
struct Service(HttpClient);

#[async_trait]
impl Client for Service {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        self.0.transfer(t, Duration::from_secs(10)).await
    }
    async fn read(&self, _bank: BankId) -> Outcome {
        Outcome::Fail("the fixture serves no reads".to_string())
    }
}

fn clients(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = rt.block_on(instant_service());
    let service = Arc::new(Service(HttpClient::new(addr)));
    let dir = std::env::temp_dir().join(format!("chaosbank-bench-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let mut group = c.benchmark_group("clients");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("transfers against an instant service, recorded", |b| {
        b.iter_custom(|transfers| {
            let history = dir.join("history.jsonl");
            let recorder = Arc::new(Recorder::create(&history, Instant::now()).expect("history"));
            let generator = Arc::new(Generator::new(WorkloadConfig {
                read_share: 0.0,
                a_to_b_only: true,
                ..WorkloadConfig::new(1)
            }));
            let run = Clients {
                concurrency: CONCURRENCY,
                seed: 1,
                rate: None,
                deadline: Instant::now() + Duration::from_secs(3600),
                budget: Some(transfers),
            };
            let started = Instant::now();
            let counts = rt
                .block_on(run.run(service.clone(), generator, recorder.clone()))
                .expect("the clients run");
            let took = started.elapsed();
            assert_eq!(counts.ok, transfers, "every transfer accepted");
            assert_eq!(recorder.ops_written(), 2 * transfers, "invoke and ok, each");
            took
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, clients);
criterion_main!(benches);
