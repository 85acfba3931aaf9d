//! `uniffi-bindgen` for the p2pswarm uniffi crate: generates Kotlin, Swift and Python sources
//! from the built library (`generate --library target/debug/libp2pswarm_uniffi.so`).

fn main() {
    uniffi::uniffi_bindgen_main();
}
