fn main() -> std::process::ExitCode {
    micro_gw::launcher::main()
}
