//! The README's Rust example (`core/examples/hello_swarm.rs`, the hyperswarm README usage
//! example) runs and the client receives the server's message.
#![allow(clippy::panic, clippy::too_many_lines)]

#[path = "../examples/hello_swarm.rs"]
mod hello_swarm;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_delivers_the_server_message() {
    let text = hello_swarm::run().await.expect("example runs");
    assert_eq!(text, "this is a server connection");
}
