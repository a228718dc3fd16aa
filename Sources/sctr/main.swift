import SctrCLI
Sctr.main(Array(CommandLine.arguments.dropFirst()))
