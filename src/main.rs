//! The `rafka` binary. Until the broker lands it prints its version and usage.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("rafka {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    println!(
        "rafka {} — a Kafka-compatible broker (in construction: the wire protocol crate is in place; the broker is not yet)\n\nusage: rafka [server.properties] [--override key=value]...",
        env!("CARGO_PKG_VERSION")
    );
}
