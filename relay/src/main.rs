fn main() -> std::process::ExitCode {
    eyeward_relay::cli::main()
}
