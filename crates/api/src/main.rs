//! The `rotor` binary: parse the command line and hand over to the library.

/// A proxy allocates and frees many small buffers per request; mimalloc does that markedly
/// faster than the system allocator under load (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rotor_api::cli::main()
}
