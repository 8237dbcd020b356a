//! eyeward-agent: the on-camera agent.

fn main() -> std::process::ExitCode {
    eyeward_agent::main()
}
