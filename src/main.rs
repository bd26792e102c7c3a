fn main() -> std::process::ExitCode {
    nodeimg::cli::main()
}
