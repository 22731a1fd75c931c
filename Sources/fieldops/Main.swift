import FieldOpsCLI

/// Thin entry point: everything lives in FieldOpsCLI so tests can reach it.
@main
enum Main {
    static func main() async {
        await FieldOpsCommand.main()
    }
}
