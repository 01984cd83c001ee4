//! The mock provider as a process, for benchmarks and manual runs: `mock-upstream [ADDR]`
//! (default 127.0.0.1:9999). Prints its address, then serves until killed.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".to_owned());
    let mock = rotor_tests::mock::MockUpstream::start_on(&addr).await?;
    println!("mock upstream listening on {}", mock.addr);
    // The mock records requests for tests; a long benchmark should not grow memory without
    // bound, so the log is cleared periodically.
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        mock.reset();
    }
}
