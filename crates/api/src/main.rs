//! The `rotor` binary: parse the command line and hand over to the library.

/// mimalloc instead of glibc's malloc: the gateway allocates and frees small buffers on every
/// request from two threads, where glibc's arenas cost a tenth of the CPU (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rotor_api::cli::main()
}
