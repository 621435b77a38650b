//! Link settings for the `autofix` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    // Pack the binary's relative relocations as RELR (binutils 2.38+, glibc 2.36+; an older ld
    // ignores the option with a warning). The loader then reads about 26 KB of relocations
    // instead of 2 MB of `.rela.dyn` at every start: 2-3 MB less memory for every command,
    // measured in docs/performance.md. The binary stays position-independent (ASLR).
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
