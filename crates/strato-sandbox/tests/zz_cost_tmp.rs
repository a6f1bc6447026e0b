use std::time::Instant;
use strato_sandbox::*;

async fn measure(sandbox: &Sandbox, label: &str) {
    let n = 50;
    let mut total_take = 0u128;
    let mut total_spawn = 0u128;
    let mut total_all = 0u128;
    for i in 0..n {
        let t0 = Instant::now();
        let net = sandbox.take_network().unwrap();
        let t1 = Instant::now();
        let spec = SandboxSpec {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            ..SandboxSpec::new(format!("cost-{}-{i}", std::process::id()), "/bin/true")
        };
        let mut p = sandbox.spawn(spec, net).await.unwrap();
        let t2 = Instant::now();
        p.wait().await.unwrap();
        let t3 = Instant::now();
        p.destroy().await.unwrap();
        total_take += (t1 - t0).as_micros();
        total_spawn += (t2 - t1).as_micros();
        total_all += (t3 - t0).as_micros();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    eprintln!(
        "{label}: take_network {} us, spawn-until-exec {} us, take+spawn+exit {} us (mean of {n})",
        total_take / n,
        total_spawn / n,
        total_all / n
    );
}

#[tokio::test]
#[ignore]
async fn cost() {
    let mut c = SandboxConfig::new(env!("CARGO_BIN_EXE_strato-sandbox-init"), vec![]);
    c.cgroup_parent = "strato-sandbox-tests".into();
    c.network.interface_prefix = "sbc".into();
    c.network.subnet = "10.203.0.0".parse().unwrap();
    c.network.egress_nat = false;
    c.network.pool_size = 8;
    c.mode = ModePreference::RequireStrong;
    let strong = Sandbox::detect(c.clone()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    measure(&strong, "strong").await;
    c.mode = ModePreference::ForceFallback;
    let weak = Sandbox::detect(c).unwrap();
    measure(&weak, "fallback").await;
    let t = Instant::now();
    for _ in 0..50 {
        tokio::process::Command::new("/bin/true")
            .status()
            .await
            .unwrap();
    }
    eprintln!(
        "plain tokio spawn+exit: {} us",
        t.elapsed().as_micros() / 50
    );
    let t = Instant::now();
    let cfg = NetworkConfig {
        interface_prefix: "sbd".into(),
        subnet: "10.204.0.0".parse().unwrap(),
        egress_nat: false,
        pool_size: 0,
        prefix_len: 16,
    };
    let pool = NetNamespacePool::start(cfg).unwrap();
    let _ = pool.take().unwrap();
    let t1 = Instant::now();
    for _ in 0..20 {
        drop(pool.take().unwrap());
    }
    eprintln!(
        "netns create (unpooled): {} us; start {} us",
        t1.elapsed().as_micros() / 20,
        (t1 - t).as_micros()
    );
}
