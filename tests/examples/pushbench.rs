#[path = "../../simulators/src/bench.rs"]
#[allow(dead_code)]
mod bench;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pg = std::env::args().nth(1);
    let rows = bench::push(pg.as_deref(), &[1, 10, 100], 40_000, 25).await?;
    bench::print_push(&rows, 25);
    bench::wire();
    Ok(())
}
