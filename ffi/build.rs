//! Gives the shared library its SONAME, so that installs can version it (libp2pswarm.so.0).

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libp2pswarm.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
