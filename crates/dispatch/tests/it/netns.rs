//! Refusals of metadata, WireServer and IPv4-embedding IPv6 addresses through the real
//! upstream client (each hardening point is a test, run where it cannot do harm).
//!
//! The checks run in a child copy of this test binary inside private network and mount
//! namespaces (`unshare --net --mount`): only a loopback interface, no route out, and a
//! private `/etc/hosts` naming the refused addresses. Even a wrong policy could not reach
//! the real addresses from there; the child proves that before it sends anything.

use rotor_dispatch::client::{CallError, Upstream, UpstreamRequest, Validation};
use rotor_dispatch::policy::{AddressPolicy, Rule};
use rotor_dispatch::target::{ProviderKind, Target};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// Set for the child; its checks refuse to run without it.
const CHILD_ENV: &str = "ROTOR_DISPATCH_NETNS_CHILD";
/// This test's name, as libtest filters it: the child runs the same test, which sees
/// [`CHILD_ENV`] and checks instead of spawning.
const CHILD_TEST: &str =
    "netns::blocked_addresses_are_refused_end_to_end_in_a_namespace_with_no_route_out";

/// Names the child's `/etc/hosts` gives to always-refused addresses (the resolver path).
const REFUSED_NAMES: &[(&str, &str)] = &[
    ("nat64-metadata.rotor.test", "64:ff9b::a9fe:a9fe"),
    ("local-nat64-metadata.rotor.test", "64:ff9b:1::a9fe:a9fe"),
    ("sixtofour-metadata.rotor.test", "2002:a9fe:a9fe::1"),
    ("compatible-metadata.rotor.test", "::a9fe:a9fe"),
    ("mapped-metadata.rotor.test", "::ffff:169.254.169.254"),
    ("metadata.rotor.test", "169.254.169.254"),
    ("wireserver.rotor.test", "168.63.129.16"),
    ("nat64-wireserver.rotor.test", "64:ff9b::a83f:8110"),
    ("alibaba.rotor.test", "100.100.100.200"),
    ("aws6-metadata.rotor.test", "fd00:ec2::254"),
];

/// A name for a documentation address (RFC 5737) the policy allows: the control.
const ALLOWED_NAME: (&str, &str) = ("documentation.rotor.test", "192.0.2.1");

/// Literal base URLs that must be refused (IP-literal hosts never reach the resolver).
const REFUSED_URLS: &[&str] = &[
    "http://[64:ff9b::a9fe:a9fe]/v1",
    "http://[64:ff9b::169.254.169.254]/v1",
    "http://[64:ff9b:1::a9fe:a9fe]/v1",
    "http://[2002:a9fe:a9fe::1]/v1",
    "http://[::a9fe:a9fe]/v1",
    "http://[::ffff:169.254.169.254]/latest",
    "http://[::ffff:0:a9fe:a9fe]/latest",
    "http://169.254.169.254/latest",
    "http://2852039166/latest",
    "http://0xa9.0xfe.0xa9.0xfe/latest",
    "http://168.63.129.16",
    "http://[::ffff:168.63.129.16]",
    "http://[64:ff9b::a83f:8110]",
    "http://[2002:a83f:8110::]",
    "http://100.100.100.200/latest/meta-data",
    "http://[64:ff9b::6464:64c8]/latest/meta-data",
    "http://[fd00:ec2::254]/latest",
    "http://[fd00:ec2::23]/v1/credentials",
];

#[test]
fn blocked_addresses_are_refused_end_to_end_in_a_namespace_with_no_route_out() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // Inside the namespace: prove there is no way out, then check.
        assert_no_route_out();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(check_refusals());
        return;
    }
    let hosts = std::env::temp_dir().join(format!("rotor-netns-hosts-{}", std::process::id()));
    let mut lines = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for (name, addr) in REFUSED_NAMES.iter().chain([&ALLOWED_NAME]) {
        lines.push_str(&format!("{addr} {name}\n"));
    }
    std::fs::write(&hosts, lines).unwrap();
    let exe = std::env::current_exe().unwrap();
    let run = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .args([
            "sh",
            "-c",
            r#"ip link set lo up && mount --bind "$0" /etc/hosts && exec "$@""#,
        ])
        .arg(&hosts)
        .arg(&exe)
        .args([CHILD_TEST, "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .output();
    let _ = std::fs::remove_file(&hosts);
    let out = run.unwrap_or_else(|e| {
        panic!(
            "cannot start `unshare` (util-linux): {e}. This test needs `unshare --net --mount` \
             (root) and `ip`; it does not skip"
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the checks inside the private network namespace failed, or `unshare --net --mount` / \
         `ip link set lo up` could not run (this test needs them and does not skip): {}\n\
         --- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child ran no checks\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Fails unless this process sees only a loopback interface and no route to any address
/// the checks name (a UDP `connect` picks a route without sending a packet).
fn assert_no_route_out() {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "not a private network namespace");
    let routes = std::fs::read_to_string("/proc/net/route").unwrap();
    assert_eq!(routes.lines().count(), 1, "IPv4 routes exist:\n{routes}");
    let mut probes: Vec<SocketAddr> = vec![
        "1.1.1.1:53".parse().unwrap(),
        "[2606:4700:4700::1111]:53".parse().unwrap(),
    ];
    for (_, addr) in REFUSED_NAMES.iter().chain([&ALLOWED_NAME]) {
        probes.push(SocketAddr::new(addr.parse().unwrap(), 80));
    }
    for to in probes {
        let local: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let socket = UdpSocket::bind(local).unwrap();
        let err = socket
            .connect(to)
            .expect_err(&format!("{to} is routable: refusing to run"));
        assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{to}: {err}");
    }
}

fn target(base_url: &str) -> Target {
    Target {
        kind: ProviderKind::OpenAiCompatible,
        base_url: base_url.to_owned(),
        api_key: Zeroizing::new("sk-netns-test".to_owned()),
        organization: None,
        api_version: None,
        deployment: None,
    }
}

/// A raw GET of `url`, as dispatch sends one (no policy check of the URL first).
fn get(url: &str) -> UpstreamRequest {
    http::Request::get(url).body(Default::default()).unwrap()
}

async fn check_refusals() {
    // Every list says yes: only the always-refused rules can say no.
    let policy = AddressPolicy {
        allow: vec![
            Rule::Net("0.0.0.0/0".parse().unwrap()),
            Rule::Net("::/0".parse().unwrap()),
        ],
        deny: vec![],
        allow_private_by_default: true,
    };
    let upstream = Upstream::new(policy).unwrap();
    let timeout = Duration::from_secs(5);

    // The client works here: a loopback provider validates.
    let provider = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = provider.local_addr().unwrap().port();
    let serve = tokio::spawn(async move {
        let (mut conn, _) = provider.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf).await.unwrap();
        let body = r#"{"data":[]}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(body.as_bytes()).await.unwrap();
    });
    let local = target(&format!("http://127.0.0.1:{port}/v1"));
    assert_eq!(upstream.validate(&local, timeout).await, Validation::Valid);
    serve.await.unwrap();

    // An allowed address that cannot be reached is unreachable, not blocked: the refusals
    // below are the policy's doing, not the namespace's.
    let control = target(&format!("http://{}", ALLOWED_NAME.1));
    assert_eq!(
        upstream.validate(&control, timeout).await,
        Validation::Unreachable
    );
    let control = format!("http://{}/v1/models", ALLOWED_NAME.0);
    let err = upstream.send(get(&control)).await.unwrap_err();
    assert_eq!(err, CallError::Unreachable, "{control}");

    // Literal hosts: refused before any connection.
    for url in REFUSED_URLS {
        assert!(upstream.check_url(url).is_err(), "{url} passed check_url");
        assert_eq!(
            upstream.validate(&target(url), timeout).await,
            Validation::BlockedAddress,
            "{url}"
        );
    }

    // Names: refused by the resolver at connect time, for validation and for raw calls.
    for (name, addr) in REFUSED_NAMES {
        let base = format!("http://{name}/v1");
        assert_eq!(
            upstream.validate(&target(&base), timeout).await,
            Validation::BlockedAddress,
            "{name} ({addr})"
        );
        let err = upstream
            .send(get(&format!("{base}/chat/completions")))
            .await
            .unwrap_err();
        assert_eq!(err, CallError::BlockedAddress, "{name} ({addr})");
    }
}
