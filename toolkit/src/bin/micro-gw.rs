fn main() -> std::process::ExitCode {
    micro_gw::cli::main()
}
