//! The `pinvault` command-line tool: pins and pinset transfer against any backend URL, and
//! `exec` scripts that run many commands against one opened backend (which is what makes the
//! in-process `memory:` backend useful from a shell).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
