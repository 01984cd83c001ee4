//! The `rotor` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    rotor_api::cli::main()
}
