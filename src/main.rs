//! The `squall` binary: everything lives in the library; see `squall::cli`.

fn main() -> std::process::ExitCode {
    squall::cli::main()
}
