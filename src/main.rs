fn main() -> std::process::ExitCode {
    hoopx::cli::main()
}
