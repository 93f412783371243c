//! A local Redis Cluster for the tests: three `redis-server --cluster-enabled yes` processes on
//! free ports, joined with `redis-cli --cluster create`, started once per test run on first
//! use. Each server runs under a watchdog that stops it (and removes its files) when this test
//! process ends, however it ends.

use std::{
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The cluster: the `REDIS_URL` that names it (its nodes, comma-separated).
pub struct Cluster {
    pub url: String,
    /// The watchdogs: they end (and end their servers) with this process.
    _watchdogs: Vec<std::process::Child>,
}

/// The test run's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(start)
}

/// A port that is free, and whose cluster bus port (+10 000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = crate::process::free_port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
}

fn start() -> Cluster {
    let dir = std::env::temp_dir().join(format!("paygate-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cluster dir");
    let me = std::process::id();
    let mut ports = Vec::new();
    while ports.len() < 3 {
        let p = free_cluster_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let mut watchdogs = Vec::new();
    for port in &ports {
        let server = format!(
            "redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes \
             --cluster-config-file nodes-{port}.conf --cluster-node-timeout 2000 --dir {dir} \
             --save '' --appendonly no --daemonize no",
            dir = dir.display()
        );
        // The watchdog: the server lives as long as this test process.
        let script = format!(
            "{server} >/dev/null 2>&1 & pid=$!; while kill -0 {me} 2>/dev/null; do sleep 1; done; \
             kill $pid; wait $pid; rm -rf {dir}",
            dir = dir.display()
        );
        let watchdog = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash and redis-server must be installed");
        watchdogs.push(watchdog);
    }
    for port in &ports {
        wait_until(&format!("redis-server on {port}"), || {
            cli(*port, &["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli must be installed");
    assert!(
        created.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    for port in &ports {
        wait_until(&format!("the cluster as seen from {port}"), || {
            cli(*port, &["CLUSTER", "INFO"]).is_some_and(|o| o.contains("cluster_state:ok"))
        });
    }
    let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
    Cluster {
        url: urls.join(","),
        _watchdogs: watchdogs,
    }
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The queues really live on the cluster: each queue's keys share its hash tag's slot, the
/// three queues' slots differ, and each queue's counters are on the node that owns its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_queue_lives_in_one_slot_of_the_cluster() {
    use crate::helpers::{Backend, TestApp};
    let t = TestApp::spawn(Backend::PostgresRedisCluster).await;
    let payment = t.upi_payment("success@upi").await;
    let id = payment["id"].as_str().unwrap();
    t.wait_final(id).await;
    let (status, refund) = t
        .post(
            &format!("/api/v1/payments/{id}/refunds"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let prefix = t.db.redis().unwrap().prefix;
    let nodes: Vec<u16> = cluster()
        .url
        .split(',')
        .map(|u| u.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    let mut slots = Vec::new();
    for queue in ["payments", "refunds"] {
        let key = format!("{{{prefix}:{queue}}}:completed");
        let slot: u16 = cli(nodes[0], &["CLUSTER", "KEYSLOT", &key])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let due: u16 = cli(
            nodes[0],
            &["CLUSTER", "KEYSLOT", &format!("{{{prefix}:{queue}}}:due")],
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        assert_eq!(slot, due, "a queue's keys share one slot");
        slots.push(slot);
        // Exactly one node holds the counter: the one that owns the slot.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let holders: Vec<u16> = nodes
                .iter()
                .copied()
                .filter(|p| {
                    cli(*p, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
                        .is_some_and(|n| n.trim() != "0")
                })
                .collect();
            if holders.len() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{queue}: {holders:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_ne!(slots[0], slots[1], "queues are spread over slots");
}
