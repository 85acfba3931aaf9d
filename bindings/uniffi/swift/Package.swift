// swift-tools-version:5.9
// Swift bindings of p2pswarm: uniffi's generated sources (Sources/P2pswarm/P2pswarmFFI.swift and
// the C module p2pswarm_uniffiFFI, from bindings/uniffi/generate.sh) plus AsyncStream adapters.
// The native library libp2pswarm_uniffi is linked from the directory given with
// `-Xlinker -L<dir>` (build.sh passes the workspace's target/debug). For iOS, build the crate
// for the Apple targets and wrap it in an XCFramework (not done here).
import PackageDescription

let package = Package(
    name: "P2pswarm",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "P2pswarm", targets: ["P2pswarm"]),
    ],
    targets: [
        .systemLibrary(name: "p2pswarm_uniffiFFI", path: "Sources/p2pswarm_uniffiFFI"),
        .target(name: "P2pswarm", dependencies: ["p2pswarm_uniffiFFI"], path: "Sources/P2pswarm"),
        .testTarget(name: "P2pswarmTests", dependencies: ["P2pswarm"], path: "Tests/P2pswarmTests"),
    ]
)
